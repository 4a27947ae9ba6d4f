"""The UI's screens besides the conversations: :mod:`.contacts`, :mod:`.dialogs`
(questions asked in a modal), :mod:`.help`."""
