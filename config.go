package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"storm/import/source"
	"storm/meta"
	"storm/node"
)

// settings is storm.toml, parsed once: the file, then STORM_* environment
// variables (STORM_NODE_ID, STORM_TARGET_PORT, ...), then flags.
type settings struct {
	Job struct {
		ID string `mapstructure:"id"`
	} `mapstructure:"job"`
	Etcd struct {
		Endpoints []string `mapstructure:"endpoints"`
		Prefix    string   `mapstructure:"prefix"`
		LeaseTTL  int      `mapstructure:"lease-ttl"`
		EmbedDir  string   `mapstructure:"embed-dir"`
	} `mapstructure:"etcd"`
	Source struct {
		Dir string           `mapstructure:"dir"`
		CSV source.CSVConfig `mapstructure:"csv"`
	} `mapstructure:"source"`
	Target struct {
		Host     string `mapstructure:"host"`
		Port     int    `mapstructure:"port"`
		User     string `mapstructure:"user"`
		Password string `mapstructure:"password"`
		TimeZone string `mapstructure:"time-zone"`
	} `mapstructure:"target"`
	Node struct {
		ID           string        `mapstructure:"id"`
		Workers      int           `mapstructure:"workers"`
		StartTimeout time.Duration `mapstructure:"start-timeout"`
	} `mapstructure:"node"`
	Import struct {
		ShardSize   int64  `mapstructure:"shard-size"`
		BatchSize   int    `mapstructure:"batch-size"`
		OnDuplicate string `mapstructure:"on-duplicate"`
		Mode        string `mapstructure:"mode"`
		Incremental bool   `mapstructure:"incremental"`
	} `mapstructure:"import"`
	Log struct {
		Level  string `mapstructure:"level"`
		Format string `mapstructure:"format"`
	} `mapstructure:"log"`
}

func defaults(v *viper.Viper) {
	host, _ := os.Hostname()
	csv := source.DefaultCSV()
	for k, val := range map[string]any{
		"etcd.endpoints":              []string{"http://127.0.0.1:2379"},
		"etcd.prefix":                 meta.DefaultPrefix,
		"etcd.lease-ttl":              10,
		"source.csv.separator":        csv.Separator,
		"source.csv.delimiter":        csv.Delimiter,
		"source.csv.header":           csv.Header,
		"source.csv.null":             csv.Null,
		"source.csv.backslash-escape": csv.BackslashEscape,
		"source.csv.strict-format":    false,
		"source.csv.terminator":       "",
		"target.host":                 "127.0.0.1",
		"target.port":                 3306,
		"target.user":                 "root",
		"target.password":             "",
		"target.time-zone":            "+00:00",
		"node.id":                     host,
		"node.workers":                4,
		"node.start-timeout":          "30s",
		"import.shard-size":           256 << 20,
		"import.batch-size":           4 << 20,
		"import.on-duplicate":         "error",
		"import.mode":                 "auto",
		"import.incremental":          false,
		"log.level":                   "info",
		"log.format":                  "text",
		"job.id":                      "",
		"etcd.embed-dir":              "",
		"source.dir":                  "",
	} {
		v.SetDefault(k, val)
	}
}

// commonFlags are the flags every subcommand takes.
func commonFlags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.StringP("config", "c", "storm.toml", "config file (TOML)")
	fs.String("job", "", "job id (job.id)")
	fs.StringSlice("etcd", nil, "etcd endpoints (etcd.endpoints)")
	return fs
}

// load reads the config file, the environment and the flags of fs.
func load(fs *pflag.FlagSet) (*settings, error) {
	v := viper.New()
	defaults(v)
	path, _ := fs.GetString("config")
	v.SetConfigFile(path)
	v.SetConfigType("toml")
	// Without --config, a missing storm.toml is fine: the environment may
	// say it all.
	if _, err := os.Stat(path); err == nil || fs.Changed("config") {
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	v.SetEnvPrefix("STORM")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()
	for flag, key := range map[string]string{"job": "job.id", "etcd": "etcd.endpoints", "node-id": "node.id", "workers": "node.workers"} {
		if f := fs.Lookup(flag); f != nil && f.Changed {
			if err := v.BindPFlag(key, f); err != nil {
				return nil, err
			}
		}
	}
	var s settings
	if err := v.Unmarshal(&s); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	// Environment lists arrive as one string.
	if len(s.Etcd.Endpoints) == 1 && strings.Contains(s.Etcd.Endpoints[0], ",") {
		s.Etcd.Endpoints = strings.Split(s.Etcd.Endpoints[0], ",")
	}
	return &s, s.validate()
}

func (s *settings) validate() error {
	var bad []string
	if s.Job.ID == "" {
		bad = append(bad, "job.id is required")
	}
	if s.Node.Workers < 1 {
		bad = append(bad, "node.workers must be at least 1")
	}
	if s.Etcd.LeaseTTL < 2 {
		bad = append(bad, "etcd.lease-ttl must be at least 2 seconds")
	}
	if s.Import.ShardSize < 1 {
		bad = append(bad, "import.shard-size must be positive")
	}
	switch s.Import.OnDuplicate {
	case "error", "replace", "ignore":
	default:
		bad = append(bad, fmt.Sprintf("import.on-duplicate %q: want error, replace or ignore", s.Import.OnDuplicate))
	}
	switch s.Import.Mode {
	case "auto", "load", "insert":
	default:
		bad = append(bad, fmt.Sprintf("import.mode %q: want auto, load or insert", s.Import.Mode))
	}
	if len(bad) > 0 {
		return fmt.Errorf("config: %s", strings.Join(bad, "; "))
	}
	return nil
}

// spec is the part of the settings every node must agree on.
func (s *settings) spec() meta.Spec {
	return meta.Spec{
		Job:    s.Job.ID,
		Source: meta.SourceSpec{Dir: s.Source.Dir, CSV: s.Source.CSV},
		Target: meta.TargetSpec{Host: s.Target.Host, Port: s.Target.Port, User: s.Target.User, TimeZone: s.Target.TimeZone},
		Import: meta.ImportSpec{ShardSize: s.Import.ShardSize, BatchSize: s.Import.BatchSize,
			OnDuplicate: s.Import.OnDuplicate, Mode: s.Import.Mode, Incremental: s.Import.Incremental},
	}
}

func (s *settings) nodeConfig() node.Config {
	return node.Config{
		Spec: s.spec(), Prefix: s.Etcd.Prefix, Endpoints: s.Etcd.Endpoints, LeaseTTL: s.Etcd.LeaseTTL,
		NodeID: s.Node.ID, Workers: s.Node.Workers, Password: s.Target.Password,
		EmbedDir: s.Etcd.EmbedDir, StartTimeout: s.Node.StartTimeout, ProgressInterval: 2 * time.Second,
	}
}
