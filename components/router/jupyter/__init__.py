"""The node's Jupyter face: Jupyter Kernel Gateway's REST API and channels WebSocket under ``/jupyter``.

JupyterLab, Notebook 7, nbclient and papermill reach remote kernels through
Jupyter Server's ``GatewayClient``; this face lets them use the node's forked
kernels.  It runs inside the router process as a Crossbar ``resource`` web
service (L{face.JupyterFace}), speaks WAMP to the rest of the node through a
backend session, and trusts no client: each message goes to the spawner's
``jupyter`` procedure, which checks and signs it (components.worker.jupyter_messages).
"""
