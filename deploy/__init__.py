"""Deployment pieces: ``make cluster`` (deploy.cluster), HAProxy (deploy.haproxy), TLS for it (deploy.tls)."""
