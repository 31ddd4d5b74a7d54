"""The CLI's commands, one module per command family. Each imports the planner and the output layer
(:mod:`.render`) and shared edge helpers (:mod:`.common`), never another command module."""
