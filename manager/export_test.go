package manager

// Links counts c's idle connections by path: on shared memory, on the
// socket.
func Links(c *Client) (shm, socket int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.idle {
		if l.in != nil {
			shm++
		} else {
			socket++
		}
	}
	return shm, socket
}
