package config

// Onion services hosted by gotor (tor(1) "HIDDEN SERVICE OPTIONS";
// rend-spec-v3): each HiddenServiceDir line starts a service, and the
// HiddenService* lines after it configure that service, as in C tor. A
// HiddenService* line before any HiddenServiceDir is an error naming its
// file:line. Only version 3 exists.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/gotor/gotor/internal/torrc"
)

// OnionServiceConfig is one hosted onion service: a HiddenServiceDir
// block.
type OnionServiceConfig struct {
	// Dir holds the service's keys and hostname in C tor's formats
	// (hs_ed25519_secret_key, hs_ed25519_public_key, hostname) and its
	// authorized_clients/*.auth files; created with a new key if empty.
	Dir string
	// Ports map virtual ports to local targets (HiddenServicePort).
	Ports []OnionPort
	// NumIntroPoints is HiddenServiceNumIntroductionPoints (1-20; 0: 3).
	NumIntroPoints int
	// MaxStreams limits concurrent streams per rendezvous circuit (0:
	// unlimited); MaxStreamsCloseCircuit closes the circuit beyond it.
	MaxStreams             int
	MaxStreamsCloseCircuit bool
	// DirGroupReadable makes Dir and its files group-readable.
	DirGroupReadable bool
	// IntroDoSDefense asks introduction points to rate-limit INTRODUCE2
	// cells (HiddenServiceEnableIntroDoSDefense, with its rate and burst
	// per second; C tor's defaults 25 and 200).
	IntroDoSDefense                         bool
	IntroDoSRatePerSec, IntroDoSBurstPerSec uint64
}

// OnionPort is one HiddenServicePort line.
type OnionPort struct {
	Virtual uint16
	// Target is "IP:PORT" or "unix:/path".
	Target string
}

// DefaultIntroDoSRate and DefaultIntroDoSBurst are C tor's defaults.
const (
	DefaultIntroDoSRate  = 25
	DefaultIntroDoSBurst = 200
)

func (o OnionServiceConfig) validate() error {
	if o.Dir == "" {
		return errors.New("empty HiddenServiceDir")
	}
	if len(o.Ports) == 0 {
		return fmt.Errorf("HiddenServiceDir %s has no HiddenServicePort", o.Dir)
	}
	if o.NumIntroPoints < 0 || o.NumIntroPoints > 20 {
		return fmt.Errorf("HiddenServiceNumIntroductionPoints %d: must be 1 to 20", o.NumIntroPoints)
	}
	if o.MaxStreams < 0 || o.MaxStreams > 65535 {
		return fmt.Errorf("HiddenServiceMaxStreams %d: must be 0 to 65535", o.MaxStreams)
	}
	for _, p := range o.Ports {
		if p.Virtual == 0 {
			return errors.New("HiddenServicePort: virtual port 0")
		}
		if !strings.HasPrefix(p.Target, "unix:") {
			if _, err := netip.ParseAddrPort(p.Target); err != nil {
				return fmt.Errorf("HiddenServicePort %d: target %q: %v", p.Virtual, p.Target, err)
			}
		}
	}
	return nil
}

// parseOnionPort parses "VIRTPORT [TARGET]": TARGET is PORT, ADDR:PORT or
// unix:PATH; without it, 127.0.0.1:VIRTPORT (tor(1)).
func parseOnionPort(v string) (OnionPort, error) {
	f := strings.Fields(v)
	if len(f) == 0 || len(f) > 2 {
		return OnionPort{}, errors.New("want VIRTPORT [TARGET]")
	}
	vp, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil || vp == 0 {
		return OnionPort{}, fmt.Errorf("bad virtual port %q", f[0])
	}
	p := OnionPort{Virtual: uint16(vp), Target: net.JoinHostPort("127.0.0.1", f[0])}
	if len(f) == 1 {
		return p, nil
	}
	t := f[1]
	switch {
	case strings.HasPrefix(t, "unix:"):
		path := strings.Trim(strings.TrimPrefix(t, "unix:"), `"`)
		if path == "" {
			return OnionPort{}, fmt.Errorf("empty socket path in %q", t)
		}
		p.Target = "unix:" + path
	default:
		if n, err := strconv.ParseUint(t, 10, 16); err == nil && n > 0 {
			p.Target = net.JoinHostPort("127.0.0.1", t)
			break
		}
		host, port, err := net.SplitHostPort(t)
		if err != nil {
			return OnionPort{}, fmt.Errorf("bad target %q", t)
		}
		if strings.EqualFold(host, "localhost") {
			host = "127.0.0.1"
		}
		a, err := netip.ParseAddr(strings.Trim(host, "[]"))
		if err != nil {
			return OnionPort{}, fmt.Errorf("target %q: not an IP address", t)
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return OnionPort{}, fmt.Errorf("target %q: bad port", t)
		}
		p.Target = netip.AddrPortFrom(a, uint16(n)).String()
	}
	return p, nil
}

// lastService is the service the HiddenService* line l belongs to.
func lastService(c *Config, l torrc.Line) (*OnionServiceConfig, error) {
	if len(c.OnionServices) == 0 {
		return nil, errors.New("comes before any HiddenServiceDir")
	}
	return &c.OnionServices[len(c.OnionServices)-1], nil
}

// serviceOpt is a HiddenService* option applying to the last service.
func serviceOpt(f func(s *OnionServiceConfig, v string) error) option {
	return option{
		list:  true,
		reset: func(*Config) {}, // HiddenServiceDir's reset clears every service
		set: func(c *Config, _ *loadState, l torrc.Line, v string) error {
			s, err := lastService(c, l)
			if err != nil {
				return err
			}
			return f(s, strings.TrimSpace(v))
		},
	}
}

func init() {
	options["HiddenServiceDir"] = option{
		list:  true,
		reset: func(c *Config) { c.OnionServices = nil },
		set: func(c *Config, _ *loadState, _ torrc.Line, v string) error {
			dir := expandHome(strings.TrimSpace(v))
			if dir == "" {
				return errors.New("empty directory")
			}
			for _, s := range c.OnionServices {
				if s.Dir == dir {
					return fmt.Errorf("%s is already the directory of another service", dir)
				}
			}
			c.OnionServices = append(c.OnionServices, OnionServiceConfig{Dir: dir,
				IntroDoSRatePerSec: DefaultIntroDoSRate, IntroDoSBurstPerSec: DefaultIntroDoSBurst})
			return nil
		},
	}
	options["HiddenServicePort"] = serviceOpt(func(s *OnionServiceConfig, v string) error {
		p, err := parseOnionPort(v)
		if err == nil {
			s.Ports = append(s.Ports, p)
		}
		return err
	})
	options["HiddenServiceVersion"] = serviceOpt(func(_ *OnionServiceConfig, v string) error {
		if v != "3" {
			return fmt.Errorf("%q: only version 3 onion services exist", v)
		}
		return nil
	})
	intOpt := func(set func(s *OnionServiceConfig, n int), lo, hi int) option {
		return serviceOpt(func(s *OnionServiceConfig, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < lo || n > hi {
				return fmt.Errorf("%q: want an integer from %d to %d", v, lo, hi)
			}
			set(s, n)
			return nil
		})
	}
	boolSvc := func(set func(s *OnionServiceConfig, b bool)) option {
		return serviceOpt(func(s *OnionServiceConfig, v string) error {
			b, err := parseBool(v)
			if err == nil {
				set(s, b)
			}
			return err
		})
	}
	options["HiddenServiceNumIntroductionPoints"] = intOpt(func(s *OnionServiceConfig, n int) { s.NumIntroPoints = n }, 1, 20)
	options["HiddenServiceMaxStreams"] = intOpt(func(s *OnionServiceConfig, n int) { s.MaxStreams = n }, 0, 65535)
	options["HiddenServiceMaxStreamsCloseCircuit"] = boolSvc(func(s *OnionServiceConfig, b bool) { s.MaxStreamsCloseCircuit = b })
	options["HiddenServiceDirGroupReadable"] = boolSvc(func(s *OnionServiceConfig, b bool) { s.DirGroupReadable = b })
	options["HiddenServiceEnableIntroDoSDefense"] = boolSvc(func(s *OnionServiceConfig, b bool) { s.IntroDoSDefense = b })
	options["HiddenServiceEnableIntroDoSRatePerSec"] = intOpt(func(s *OnionServiceConfig, n int) { s.IntroDoSRatePerSec = uint64(n) }, 1, 0x7fffffff)
	options["HiddenServiceEnableIntroDoSBurstPerSec"] = intOpt(func(s *OnionServiceConfig, n int) { s.IntroDoSBurstPerSec = uint64(n) }, 1, 0x7fffffff)

	// --dump-config: a service's lines stay together under its
	// HiddenServiceDir, in C tor's order.
	dumpers["HiddenServiceDir"] = func(c *Config) []string {
		var out []string
		for _, s := range c.OnionServices {
			lines := []string{s.Dir}
			for _, p := range s.Ports {
				lines = append(lines, fmt.Sprintf("HiddenServicePort %d %s", p.Virtual, p.Target))
			}
			if s.NumIntroPoints != 0 {
				lines = append(lines, fmt.Sprintf("HiddenServiceNumIntroductionPoints %d", s.NumIntroPoints))
			}
			if s.MaxStreams != 0 {
				lines = append(lines, fmt.Sprintf("HiddenServiceMaxStreams %d", s.MaxStreams))
			}
			for _, b := range []struct {
				name string
				on   bool
			}{{"HiddenServiceMaxStreamsCloseCircuit", s.MaxStreamsCloseCircuit}, {"HiddenServiceDirGroupReadable", s.DirGroupReadable}, {"HiddenServiceEnableIntroDoSDefense", s.IntroDoSDefense}} {
				if b.on {
					lines = append(lines, b.name+" 1")
				}
			}
			if s.IntroDoSDefense {
				lines = append(lines, fmt.Sprintf("HiddenServiceEnableIntroDoSRatePerSec %d", s.IntroDoSRatePerSec),
					fmt.Sprintf("HiddenServiceEnableIntroDoSBurstPerSec %d", s.IntroDoSBurstPerSec))
			}
			out = append(out, strings.Join(lines, "\n"))
		}
		return out
	}
	for _, name := range []string{"HiddenServicePort", "HiddenServiceVersion", "HiddenServiceNumIntroductionPoints",
		"HiddenServiceMaxStreams", "HiddenServiceMaxStreamsCloseCircuit", "HiddenServiceDirGroupReadable",
		"HiddenServiceEnableIntroDoSDefense", "HiddenServiceEnableIntroDoSRatePerSec", "HiddenServiceEnableIntroDoSBurstPerSec"} {
		dumpers[name] = func(*Config) []string { return nil } // printed with their HiddenServiceDir
	}
	for name, typ := range map[string]string{"HiddenServiceDir": "LineList", "HiddenServicePort": "LineList",
		"HiddenServiceVersion": "LineList", "HiddenServiceNumIntroductionPoints": "LineList",
		"HiddenServiceMaxStreams": "LineList", "HiddenServiceMaxStreamsCloseCircuit": "LineList",
		"HiddenServiceDirGroupReadable": "LineList", "HiddenServiceEnableIntroDoSDefense": "LineList",
		"HiddenServiceEnableIntroDoSRatePerSec": "LineList", "HiddenServiceEnableIntroDoSBurstPerSec": "LineList"} {
		optionTypes[name] = typ // C tor keeps them as one virtual line list
	}
}

// cloneServices deep-copies the services (Clone).
func cloneServices(in []OnionServiceConfig) []OnionServiceConfig {
	out := slices.Clone(in)
	for i := range out {
		out[i].Ports = slices.Clone(out[i].Ports)
	}
	return out
}
