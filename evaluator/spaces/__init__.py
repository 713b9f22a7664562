"""Search spaces, one package each."""
