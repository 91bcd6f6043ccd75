package config

// The options a controller starting gotor uses (tor(1) DisableNetwork,
// __OwningControllerProcess, __ReloadTorrcOnSIGHUP, ControlPortWriteToFile,
// ControlPortFileGroupReadable, CookieAuthFileGroupReadable; control-spec
// §3.23 for the owning controller): their entries in the option table and
// in dumpers.
//
// Registered here rather than in the tables of options.go and dump.go
// while those files change on several branches; the entries belong there.

import (
	"fmt"
	"strconv"

	"github.com/gotor/gotor/internal/torrc"
)

func init() {
	for name, f := range map[string]func(*Config) *bool{
		"DisableNetwork":               func(c *Config) *bool { return &c.DisableNetwork },
		"__ReloadTorrcOnSIGHUP":        func(c *Config) *bool { return &c.ReloadTorrcOnSIGHUP },
		"ControlPortFileGroupReadable": func(c *Config) *bool { return &c.ControlPortFileGroupReadable },
		"CookieAuthFileGroupReadable":  func(c *Config) *bool { return &c.CookieAuthFileGroupReadable },
	} {
		options[name] = boolOpt(f)
		dumpers[name] = func(c *Config) []string { return boolValue(*f(c)) }
	}
	options["ControlPortWriteToFile"] = stringOpt(func(c *Config) *string { return &c.ControlPortWriteToFile }, nil)
	dumpers["ControlPortWriteToFile"] = func(c *Config) []string { return nonEmpty(c.ControlPortWriteToFile) }
	options["__OwningControllerProcess"] = option{
		reset: func(c *Config) { c.OwningControllerProcess = 0 },
		set: func(c *Config, _ *loadState, _ torrc.Line, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("%q is not a process ID", v)
			}
			c.OwningControllerProcess = n
			return nil
		},
	}
	dumpers["__OwningControllerProcess"] = func(c *Config) []string {
		if c.OwningControllerProcess == 0 {
			return nil
		}
		return []string{strconv.Itoa(c.OwningControllerProcess)}
	}
}
