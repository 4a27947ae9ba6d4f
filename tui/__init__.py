"""The terminal UI (Textual). Not written yet: see README, 'What is not done yet'."""
