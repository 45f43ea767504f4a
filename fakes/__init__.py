"""Stand-ins for outside services that cannot run here, keeping their real contract: the Tripo API
(`fakes/tripo.py`), used by the tests and by `gsf fake-tripo` for local work. No part of the product
imports them (the import contract in pyproject.toml)."""
