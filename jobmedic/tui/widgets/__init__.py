"""Widgets of the chat UI: conversation, input, side panel, running jobs at risk,
remediation list."""
from jobmedic.tui.widgets.at_risk import AtRisk
from jobmedic.tui.widgets.chat_input import ChatInput
from jobmedic.tui.widgets.conversation import Conversation
from jobmedic.tui.widgets.remedies import RemedyList
from jobmedic.tui.widgets.side_panel import SidePanel

__all__ = ["AtRisk", "ChatInput", "Conversation", "RemedyList", "SidePanel"]
