package engine

import "strings"

// HostedForTest lists the labels of the running onion services, "*"
// appended to the ephemeral (ADD_ONION) ones.
func (c *Engine) HostedForTest() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.services {
		l := strings.TrimSuffix(s.Hostname(), ".onion")
		if s.ephemeral {
			l += "*"
		}
		out = append(out, l)
	}
	return out
}
