// Command arguments as C tor's control_cmd_parse_args reads them
// (control-spec §3 command syntaxes; C tor's control_cmd.c): up to max
// positional arguments separated by spaces, then, for commands that take
// them, Key=Value arguments (§2.1 QuotedString values allowed) and bare
// flags. The error texts are C tor's, as "512 Bad arguments to CMD: ...".
package control

import (
	"errors"
	"fmt"
	"strings"
)

// syntax is what a command accepts (C tor's control_cmd_syntax_t).
type syntax struct {
	min, max int // positional arguments; max < 0: any number, no keywords
	keywords bool
	// allowed are the keywords accepted, case-insensitively; nil: any.
	allowed []string
	// flags: a keyword without "=" is accepted (C tor's KV_OMIT_VALS).
	flags bool
}

type parsedArgs struct {
	pos []string
	kw  []arg // Key and Value; HasEq false for a bare flag
}

// kw returns the value of keyword k and whether it was given.
func (p parsedArgs) get(k string) (string, bool) {
	for _, a := range p.kw {
		if strings.EqualFold(a.Key, k) {
			return a.Value, true
		}
	}
	return "", false
}

func (p parsedArgs) hasFlag(k string) bool {
	for _, a := range p.kw {
		if strings.EqualFold(a.Key, k) && !a.HasEq {
			return true
		}
	}
	return false
}

// parseArgs splits a command line's arguments by syn.
func parseArgs(s string, syn syntax) (parsedArgs, error) {
	var p parsedArgs
	rest := strings.TrimLeft(s, " ")
	for rest != "" && (syn.max < 0 || len(p.pos) < syn.max) {
		word, after, _ := strings.Cut(rest, " ")
		p.pos = append(p.pos, word)
		rest = strings.TrimLeft(after, " ")
	}
	if len(p.pos) < syn.min {
		return p, fmt.Errorf("Need at least %d argument(s)", syn.min)
	}
	if rest == "" {
		return p, nil
	}
	if !syn.keywords {
		return p, fmt.Errorf("Cannot accept more than %d argument(s)", syn.max)
	}
	args, err := splitArgs(rest)
	if err != nil {
		return p, errKV
	}
	for _, a := range args {
		if !a.HasEq {
			if a.Quoted || !syn.flags {
				return p, errKV
			}
			a.Key = a.Value
			a.Value = ""
		}
		if syn.allowed != nil && !containsFold(syn.allowed, a.Key) {
			return p, errors.New("Unrecognized keyword argument " + quote(a.Key))
		}
		p.kw = append(p.kw, a)
	}
	return p, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
