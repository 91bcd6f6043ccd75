package config

import (
	"maps"
	"slices"
)

// Clone returns a deep copy of c: changing one does not change the other.
// client.New keeps a clone, so a caller may reuse or change its Config
// after New returns.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	out := *c
	out.SocksPorts = slices.Clone(c.SocksPorts)
	out.HTTPTunnelPorts = slices.Clone(c.HTTPTunnelPorts)
	out.DirAuthorities = slices.Clone(c.DirAuthorities)
	out.FallbackDirs = slices.Clone(c.FallbackDirs)
	out.ExitNodes = slices.Clone(c.ExitNodes)
	out.EntryNodes = slices.Clone(c.EntryNodes)
	out.ExcludeNodes = slices.Clone(c.ExcludeNodes)
	out.ExcludeExitNodes = slices.Clone(c.ExcludeExitNodes)
	out.ControlPorts = slices.Clone(c.ControlPorts)
	out.HashedControlPassword = slices.Clone(c.HashedControlPassword)
	out.MetricsPortPolicy = slices.Clone(c.MetricsPortPolicy)
	out.Logs = slices.Clone(c.Logs)
	out.OnionServices = cloneServices(c.OnionServices)
	out.ignored = slices.Clone(c.ignored)
	out.Bridges = slices.Clone(c.Bridges)
	out.ClientTransportPlugins = slices.Clone(c.ClientTransportPlugins)
	out.TransportDialers = maps.Clone(c.TransportDialers)
	return &out
}
