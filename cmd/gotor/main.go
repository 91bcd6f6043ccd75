// Command gotor is a Tor client written in pure Go.
package main

import (
	"fmt"
	"os"
)

var version = "0.1.0-dev"

func main() {
	fmt.Fprintf(os.Stdout, "gotor %s\n", version)
	os.Exit(0)
}
