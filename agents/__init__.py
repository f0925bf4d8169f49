"""The deployable topology: the Faust app of streamlearn and its agents (see `agents.app`)."""
