"""What runs: the transport to the Kubernetes API, the informer and reflectors that cache it, the work
queue and controller that reconcile, leader election and outage handling. Imports `core` and `api`,
never the top."""
