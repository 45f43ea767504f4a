"""The control worker (`gsf control-worker`): the process that runs every workflow and the
activities no node owns; the one part that wires workflows to their activities (worker.py)."""
