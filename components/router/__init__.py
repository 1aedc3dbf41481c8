"""Runs inside the Crossbar router process (router components and its authenticator): the relay and the authorizer."""
