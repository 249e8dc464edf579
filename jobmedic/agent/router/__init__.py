"""The offline router: intent and argument extraction by rules, resolved against the store.

`Router(vocab, now).route(question, history) -> Plan`; `Vocabulary.from_store(store, scope)`.
Pure Python (no LangChain): `jobmedic.agent.chat_model` wraps it as a LangChain chat model.
"""
from jobmedic.agent.router.core import Plan, Router
from jobmedic.agent.router.vocabulary import Vocabulary

__all__ = ["Plan", "Router", "Vocabulary"]
