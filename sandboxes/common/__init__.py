"""Pieces every sandbox shares: TLS material, fault injection, admin endpoints, serving."""
