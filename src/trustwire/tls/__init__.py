"""TLS: hardened contexts, peer identity, handshake diagnosis."""
