package control_test

import (
	"fmt"
	"log"

	"github.com/gotor/gotor/internal/control"
)

// myClient stands for the real client; it implements control.Backend (and
// optionally control.EventSource, control.ConfigLister,
// control.AddressMapper).
type myClient struct{ control.Backend }

func Example() {
	var client myClient // the client implementing Backend
	srv, err := control.New(control.Config{
		Listeners:             []control.ListenerConfig{{Addr: "127.0.0.1:0"}}, // ControlPort
		CookieAuthentication:  true,
		DataDirectory:         "/tmp/gotor-example", // cookie goes to DataDirectory/control_auth_cookie
		HashedControlPassword: []string{control.HashPassword("secret")},
	}, client)
	if err != nil {
		log.Fatal(err)
	}
	_ = srv // srv.Start() opens the listeners; defer srv.Close()

	// The client reports state changes as events; Publish never blocks.
	srv.Publish(control.Event{Type: control.EventCirc, Circuit: &control.CircuitInfo{
		ID: 5, State: control.CircLaunched, Purpose: "GENERAL"}})
	srv.Publish(control.BootstrapEvent(control.Bootstrap{Percent: 100, Tag: "done", Summary: "Done"}))

	fmt.Printf("%q\n", control.FormatEvent(control.Event{Type: control.EventStream, Stream: &control.StreamInfo{
		ID: 3, Status: control.StreamNew, Target: "example.com:80", SourceAddr: "127.0.0.1:5555", Purpose: "USER"}}))
	// Output: "650 STREAM 3 NEW 0 example.com:80 SOURCE_ADDR=127.0.0.1:5555 PURPOSE=USER\r\n"
}
