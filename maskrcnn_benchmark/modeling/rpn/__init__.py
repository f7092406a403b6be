"""Region proposal network: anchors, head, targets and loss, proposal post-processing."""
