"""The terminal chat UI (`jobmedic chat`), built with Textual."""
