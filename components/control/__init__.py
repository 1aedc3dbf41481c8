"""The control plane, a Crossbar container: placement, quotas, permalinks, owners and resumes.

It never imports ZMQ or jupyter_client (tests/test_layout.py).
"""
