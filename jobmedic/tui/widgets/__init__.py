"""Widgets of the chat UI: conversation, input, side panel, remediation list."""
from jobmedic.tui.widgets.chat_input import ChatInput
from jobmedic.tui.widgets.conversation import Conversation
from jobmedic.tui.widgets.remedies import RemedyList
from jobmedic.tui.widgets.side_panel import SidePanel

__all__ = ["ChatInput", "Conversation", "RemedyList", "SidePanel"]
