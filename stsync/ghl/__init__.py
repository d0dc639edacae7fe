"""GoHighLevel push: client (client.py), desired state (plan.py), bookkeeping (store.py), reconciler (push.py)."""
