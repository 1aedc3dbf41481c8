"""Forked children and the processes that fork them (fork master, one-shot template): never Twisted or autobahn.

A kernel is a fork of the fork master, so whatever these modules import is in every
kernel; tests/test_layout.py imports each in a fresh interpreter to keep it so.
"""
