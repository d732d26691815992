"""The fork server's last preload: once the pipeline's modules are imported, build the caches
that :func:`scaling_repro.launch.warm.start_fork_server` asked for.

The 'forkserver' start method runs no code of ours except imports of the modules named in its
preload list, so, like a ``__main__`` module, this one is run by being imported; only the fork
server imports it (:data:`scaling_repro.launch.local.SERVER_START`).
"""

from scaling_repro.launch.warm import warm_requested_caches

warm_requested_caches()
