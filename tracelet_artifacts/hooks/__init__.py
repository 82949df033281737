"""Automatic producers: a Lightning callback, a ``torch.save`` patch and a file-stability watcher.

They only build artifacts and hand them to an Experiment; none of them talks to a backend.
"""
