"""The UI's widgets: :mod:`.conversations` (the list), :mod:`.thread` (one conversation),
:mod:`.compose` (writing a message)."""
