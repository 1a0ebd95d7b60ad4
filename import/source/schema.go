package source

import (
	"fmt"
	"io"
	"strings"
)

// ReadSchema returns the CREATE statement of a schema file (optionally .gz
// or .zst), without its trailing ";". The statements around it that dumpers
// add — SET, DROP, "/*!40101 SET NAMES binary*/;" — are dropped, as are
// comments, except for versioned comments inside the CREATE such as
// "/*!40100 DEFAULT CHARACTER SET utf8mb4 */", which the server executes.
func ReadSchema(path string) (string, error) {
	_, comp := trimCompression(path)
	in, closeFn, err := openStream(path, comp)
	if err != nil {
		return "", err
	}
	defer closeFn()
	text, err := io.ReadAll(in)
	if err != nil {
		return "", fmt.Errorf("read schema %s: %w", path, err)
	}
	var creates []string
	for _, st := range splitStatements(string(text)) {
		if w, _, _ := strings.Cut(st, " "); len(w) >= 6 && strings.EqualFold(w[:6], "CREATE") && (len(w) == 6 || !isWordChar(w[6])) {
			creates = append(creates, st)
		}
	}
	switch len(creates) {
	case 0:
		return "", fmt.Errorf("schema file %s: no CREATE statement found", path)
	case 1:
		return creates[0], nil
	default:
		return "", fmt.Errorf("schema file %s: %d CREATE statements, expected one", path, len(creates))
	}
}

func isWordChar(c byte) bool { return c < 0x80 && wordByte[c] }

// splitStatements splits SQL text at the semicolons outside strings, quoted
// names and comments. Plain comments become a space; versioned comments
// ("/*!50100 ...*/", MariaDB's "/*M!100100 ...*/") are kept whole, so a ";"
// inside one does not split. Statements come back trimmed, empty ones
// dropped.
func splitStatements(text string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if st := strings.TrimSpace(cur.String()); st != "" {
			out = append(out, st)
		}
		cur.Reset()
	}
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == ';':
			flush()
			i++
		case c == '\'' || c == '"' || c == '`':
			j := quotedEnd(text, i)
			cur.WriteString(text[i:j])
			i = j
		case c == '#' || c == '-' && strings.HasPrefix(text[i:], "--") && (i+2 == len(text) || text[i+2] <= ' '):
			j := strings.IndexByte(text[i:], '\n')
			if j < 0 {
				j = len(text) - i
			}
			cur.WriteByte(' ')
			i += j
		case c == '/' && strings.HasPrefix(text[i:], "/*"):
			j := strings.Index(text[i+2:], "*/")
			end := len(text)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			if strings.HasPrefix(text[i:], "/*!") || strings.HasPrefix(text[i:], "/*M!") {
				cur.WriteString(text[i:end])
			} else {
				cur.WriteByte(' ')
			}
			i = end
		default:
			cur.WriteByte(c)
			i++
		}
	}
	flush()
	return out
}

// quotedEnd returns the index just past the quoted text starting at i.
// Backslash escapes apply in strings, not in `names`; doubled quotes in both.
func quotedEnd(text string, i int) int {
	q := text[i]
	for j := i + 1; j < len(text); j++ {
		switch text[j] {
		case '\\':
			if q != '`' {
				j++
			}
		case q:
			if j+1 < len(text) && text[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(text)
}
