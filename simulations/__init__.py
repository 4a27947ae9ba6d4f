"""The blackout simulator. Not written yet: see README, 'What is not done yet'."""
