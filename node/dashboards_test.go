package node

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"storm/jobctl"
	"storm/meta"
)

// The Grafana dashboard and the Prometheus rules under configs/ query only
// metrics a node's registry has: they cannot drift from node/metrics.go.
func TestDashboardsQueryExportedMetrics(t *testing.T) {
	exported := registeredMetrics(t)
	exprs := map[string][]string{} // file: expressions
	dash := filepath.Join("..", "configs", "grafana", "storm-dashboard.json")
	exprs[dash] = dashboardExprs(t, dash)
	rules := filepath.Join("..", "configs", "prometheus", "storm-rules.yml")
	exprs[rules] = ruleExprs(t, rules)

	// Prometheus's own series about a scrape, not storm's.
	scrape := map[string]bool{"up": true}
	for file, list := range exprs {
		if len(list) == 0 {
			t.Errorf("%s: no expressions found", file)
		}
		for _, e := range list {
			names := promqlMetrics(e)
			if len(names) == 0 {
				t.Errorf("%s: no metric found in %q", file, e)
			}
			for _, name := range names {
				if !exported[name] && !scrape[name] {
					t.Errorf("%s: %q queries %s, which storm does not export", file, e, name)
				}
			}
		}
	}
}

// registeredMetrics are the names a node's registry exposes, with the
// _bucket, _sum and _count series of its histograms and summaries.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	job, err := meta.NewJob("/storm", "dash")
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{job: job, cfg: Config{NodeID: "n1", LeaseTTL: 10}}
	reg := n.newRegistry()
	n.metrics.observeEtcd("claim", 0) // a histogram vector shows once it has a child
	// The table metrics show once a node runs table steps.
	states := func() map[string]string { return map[string]string{"shop.orders": jobctl.TableIndexing} }
	n.metrics.tables.Store(&states)
	n.metrics.stepStarted("shop.orders")
	n.metrics.stepDone("shop.customers", meta.StepIndexes, 1.5)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range families {
		name := f.GetName()
		out[name] = true
		switch f.GetType().String() {
		case "HISTOGRAM", "GAUGE_HISTOGRAM":
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		case "SUMMARY":
			out[name+"_sum"], out[name+"_count"] = true, true
		}
	}
	for _, want := range []string{"storm_rows_written_total", "storm_shards", "storm_phase", "go_goroutines",
		"storm_table_state", "storm_table_step", "storm_table_step_seconds"} {
		if !out[want] {
			t.Fatalf("registry lacks %s: %v", want, out)
		}
	}
	return out
}

// dashboardExprs are the "expr" of every target of every panel.
func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if s, ok := c.(string); ok && k == "expr" {
					out = append(out, s)
				}
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	return out
}

// ruleExprs are the expr of every rule of every group.
func ruleExprs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert  string `yaml:"alert"`
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			if r.Expr == "" {
				t.Errorf("%s: rule %s%s has no expr", path, r.Alert, r.Record)
			}
			out = append(out, r.Expr)
		}
	}
	return out
}

var (
	promString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	// Label matchers, range and subquery brackets, and the label lists of
	// by, without, on, ignoring, group_left and group_right name labels,
	// not metrics.
	promMatchers = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promLabels   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	// Grafana's variables ($storm_job, ${datasource}, $__interval).
	grafanaVar = regexp.MustCompile(`\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)
)

// promKeywords are PromQL's words that are neither metrics nor followed by
// a parenthesis.
var promKeywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
	"group_left", "group_right", "inf", "nan", "atan2"}

// promqlMetrics returns the metric names expr selects: identifiers that are
// not functions or aggregations (followed by "("), keywords, numbers,
// durations, strings or labels.
func promqlMetrics(expr string) []string {
	s := grafanaVar.ReplaceAllString(expr, "1")
	s = promString.ReplaceAllString(s, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promLabels.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		word := s[loc[0]:loc[1]]
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || slices.Contains(promKeywords, strings.ToLower(word)) {
			continue
		}
		// A number's exponent or a duration's unit (5m, 1e3).
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.') {
			continue
		}
		if !slices.Contains(out, word) {
			out = append(out, word)
		}
	}
	return out
}

// The extractor finds what a metric name looks like and nothing else.
func TestPromqlMetrics(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`rate(storm_rows_written_total[1m])`, []string{"storm_rows_written_total"}},
		{`sum by (storm_node) (rate(storm_bytes_written_total[5m]) * on (instance) group_left (storm_node) storm_node_info{storm_job=~"$storm_job"})`,
			[]string{"storm_bytes_written_total", "storm_node_info"}},
		{`histogram_quantile(0.99, sum by (le, op) (rate(storm_etcd_request_duration_seconds_bucket[5m])))`,
			[]string{"storm_etcd_request_duration_seconds_bucket"}},
		{`storm_lease_remaining_seconds < 0 and on (instance) storm_phase{phase="finished"} == 0`,
			[]string{"storm_lease_remaining_seconds", "storm_phase"}},
		{`up{job="storm"} == 0 unless bogus_metric offset 5m`, []string{"up", "bogus_metric"}},
		{`count(1e3 * storm_shards{state="failed"})`, []string{"storm_shards"}},
	} {
		if got := promqlMetrics(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("promqlMetrics(%q) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}
