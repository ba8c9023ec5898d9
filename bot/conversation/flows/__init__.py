"""The conversation's flows; each exports the `COMMANDS` and `ACTIONS` it handles."""
