package config

import (
	"errors"
	"fmt"
	"strings"
)

// SplitArgs splits a command line into arguments the way a POSIX shell
// would for the simple cases, without running a shell: blanks separate
// arguments; 'single quotes' keep everything literally; "double quotes" keep
// everything but a backslash before " or \; outside quotes a backslash keeps
// the next character literally. There is no variable expansion, globbing,
// redirection or piping; to use those, run "sh -c '…'".
func SplitArgs(line string) ([]string, error) {
	var (
		args    []string
		cur     strings.Builder
		inArg   bool
		quote   rune // 0, '\'' or '"'
		escaped bool
	)
	for _, r := range line {
		switch {
		case escaped:
			if quote == '"' && r != '"' && r != '\\' {
				cur.WriteRune('\\')
			}
			cur.WriteRune(r)
			escaped = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch r {
			case '"':
				quote = 0
			case '\\':
				escaped = true
			default:
				cur.WriteRune(r)
			}
		case r == '\\':
			escaped, inArg = true, true
		case r == '\'' || r == '"':
			quote, inArg = r, true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	switch {
	case escaped:
		return nil, errors.New("command line ends with a lone backslash")
	case quote != 0:
		return nil, fmt.Errorf("command line has an unterminated %c quote", quote)
	}
	if inArg {
		args = append(args, cur.String())
	}
	if len(args) == 0 {
		return nil, errors.New("command line is empty")
	}
	return args, nil
}
