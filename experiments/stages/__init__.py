"""Procedures that more than one command runs: each stage reads the files of the stage before it and
writes its own. The command modules (`mirrorlab.experiments.<command>`) and the study call them; a stage
never imports a command."""
