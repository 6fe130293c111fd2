"""The `mirrorlab` commands: one leaf module per command, each wiring the layers below; `stages/`
holds the procedures that more than one command runs (the study runs them all)."""
