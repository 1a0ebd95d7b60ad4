package meta

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Diff names every field where two specs differ, in config-key form
// ("import.shard-size: 1048576 in etcd, 2097152 here"), so a node whose
// storm.toml differs from its peers' can say exactly what to fix.
func (s Spec) Diff(here Spec) []string {
	a, b := flatten(s), flatten(here)
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if a[k] != b[k] {
			out = append(out, fmt.Sprintf("%s: %s in etcd, %s here", k, orNone(a[k]), orNone(b[k])))
		}
	}
	sort.Strings(out)
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}

// flatten turns a spec into dotted keys and JSON-encoded leaf values.
func flatten(s Spec) map[string]string {
	var tree map[string]any
	if err := json.Unmarshal([]byte(Encode(s)), &tree); err != nil {
		panic(err)
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok {
			for k, child := range m {
				name := k
				if prefix != "" {
					name = prefix + "." + k
				}
				walk(name, child)
			}
			return
		}
		out[prefix] = Encode(v)
	}
	walk("", tree)
	return out
}
