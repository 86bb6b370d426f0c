package posixmq

// HasCapSysResource reports whether this process bypasses msg_max,
// msgsize_max and queues_max, as far as /proc/self/status tells.
func HasCapSysResource() bool { return hasCap(capSysResource) }
