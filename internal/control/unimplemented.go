// Defaults for Backend implementations under construction.
package control

// UnimplementedBackend can be embedded in a Backend implementation to get
// neutral answers for methods not written yet: no circuits, streams or
// listeners, unknown configuration keys, unsupported signals.
type UnimplementedBackend struct{}

func (UnimplementedBackend) Version() string { return "0.0.0.0-gotor" }
func (UnimplementedBackend) BootstrapStatus() Bootstrap {
	return Bootstrap{Tag: "starting", Summary: "Starting"}
}
func (UnimplementedBackend) Circuits() []CircuitInfo          { return nil }
func (UnimplementedBackend) Streams() []StreamInfo            { return nil }
func (UnimplementedBackend) Listeners(string) []string        { return nil }
func (UnimplementedBackend) GetConf(string) ([]string, error) { return nil, ErrUnknownKey }
func (UnimplementedBackend) SetConf([]ConfChange) error       { return ErrNotSupported }
func (UnimplementedBackend) Signal(string) error              { return ErrNotSupported }
func (UnimplementedBackend) TrafficRead() uint64              { return 0 }
func (UnimplementedBackend) TrafficWritten() uint64           { return 0 }
func (UnimplementedBackend) NSByID(string) (string, error)    { return "", ErrUnknownKey }
func (UnimplementedBackend) ConfigFile() string               { return "" }

var _ Backend = UnimplementedBackend{}
