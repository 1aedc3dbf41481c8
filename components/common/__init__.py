"""What every process of the node but a kernel shares: URIs, errors, argument checks, configuration, the node key."""
