"""Audio description for video: shots, what they show, gaps in the dialogue, a narration track."""
