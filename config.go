package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"storm/import/checksum"
	"storm/import/source"
	"storm/import/storage"
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
		// Per node, never in the spec (config_tls.go).
		Username     string      `mapstructure:"username"`
		Password     string      `mapstructure:"password"`
		PasswordFile string      `mapstructure:"password-file"`
		TLS          tlsSettings `mapstructure:"tls"`
	} `mapstructure:"etcd"`
	Source struct {
		Dir string `mapstructure:"dir"`
		// Dirs are [[source.dirs]] tables: id, dir and, for a dump on one
		// host's local disk, the node that holds it.
		Dirs []struct {
			ID   string `mapstructure:"id"`
			Dir  string `mapstructure:"dir"`
			Node string `mapstructure:"node"`
		} `mapstructure:"dirs"`
		CSV source.CSVConfig `mapstructure:"csv"`
		// Files are [[source.files]] routing rules (source.Route).
		Files []source.Route `mapstructure:"files"`
		// S3 is [source.s3], for s3:// sources: per node, never in the
		// spec (config_tls.go reads the secret).
		S3 s3Settings `mapstructure:"s3"`
	} `mapstructure:"source"`
	Target struct {
		// Host is one SQL server or several ("host" or "host:port", a TOML
		// list or a comma-separated string); Hosts adds more (targetSpec).
		Host     []string `mapstructure:"host"`
		Hosts    []string `mapstructure:"hosts"`
		Port     int      `mapstructure:"port"`
		User     string   `mapstructure:"user"`
		Password string   `mapstructure:"password"`
		TimeZone string   `mapstructure:"time-zone"`
		// Per node, never in the spec (config_tls.go).
		PasswordFile string            `mapstructure:"password-file"`
		TLS          targetTLSSettings `mapstructure:"tls"`
	} `mapstructure:"target"`
	Node struct {
		ID           string        `mapstructure:"id"`
		Workers      int           `mapstructure:"workers"`
		StartTimeout time.Duration `mapstructure:"start-timeout"`
		StatusAddr   string        `mapstructure:"status-addr"`
		StatusTLS    tlsSettings   `mapstructure:"status-tls"` // config_tls.go
		// ExitWhenIdle: once this node's own sources are done and it can
		// claim nothing more, exit 0 without waiting for the barrier.
		ExitWhenIdle bool `mapstructure:"exit-when-idle"`
	} `mapstructure:"node"`
	Import struct {
		// ShardSize is "auto" or bytes, with or without a unit
		// (shardSize).
		ShardSize   string `mapstructure:"shard-size"`
		BatchSize   int    `mapstructure:"batch-size"`
		OnDuplicate string `mapstructure:"on-duplicate"`
		Mode        string `mapstructure:"mode"`
		Incremental bool   `mapstructure:"incremental"`
		MaxErrors   int64  `mapstructure:"max-errors"`
		// DeferIndexes: auto or off (docs/table-pipeline.md).
		DeferIndexes string `mapstructure:"defer-indexes"`
	} `mapstructure:"import"`
	Post struct {
		Analyze string `mapstructure:"analyze"` // on or off
	} `mapstructure:"post"`
	Verify struct {
		Mode string `mapstructure:"mode"`
		// RowHashBits: 32 (CRC32 of the row's SHA-1) or 64 (its first 8
		// bytes); checksum.RowHash says what each costs and guarantees.
		RowHashBits int `mapstructure:"row-hash-bits"`
	} `mapstructure:"verify"`
	TiDB struct {
		PDAddrs         []string `mapstructure:"pd-addrs"`
		ImportMode      bool     `mapstructure:"import-mode"`
		PauseSchedulers bool     `mapstructure:"pause-schedulers"`
		// PauseTTL (seconds) is hidden: how long PD keeps the scheduler
		// pause unless the keeper renews it; 0 is import/tikv's default
		// (5 minutes). Tests shorten it to watch the keeper at work.
		PauseTTL int `mapstructure:"pause-ttl"`
		// PreSplit: auto splits each empty table's Regions at plan time
		// (TiDB targets only), off does not.
		PreSplit string `mapstructure:"pre-split"`
		// TLS to PD and TiKV: per node, never in the spec (config_tls.go).
		TLS tlsSettings `mapstructure:"tls"`
	} `mapstructure:"tidb"`
	Log struct {
		Level  string `mapstructure:"level"`
		Format string `mapstructure:"format"`
	} `mapstructure:"log"`

	secrets secretState // what reading the password files found (config_tls.go)
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
		"node.exit-when-idle":         false,
		"node.status-addr":            "",
		"import.shard-size":           "auto",
		"import.batch-size":           4 << 20,
		"import.on-duplicate":         "error",
		"import.mode":                 "auto",
		"import.incremental":          false,
		"import.max-errors":           0,
		"import.defer-indexes":        "auto",
		"post.analyze":                "on",
		"verify.mode":                 meta.VerifyDigest,
		"verify.row-hash-bits":        int(checksum.DefaultRowHash),
		"tidb.pd-addrs":               []string{},
		"tidb.import-mode":            true,
		"tidb.pause-schedulers":       true,
		"tidb.pause-ttl":              0,
		"tidb.pre-split":              "auto",
		"log.level":                   "info",
		"log.format":                  "text",
		"job.id":                      "",
		"etcd.embed-dir":              "",
		"source.dir":                  "",
	} {
		v.SetDefault(k, val)
	}
	securityDefaults(v) // config_tls.go
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
	return read(v, fs)
}

// read is load on a viper whose defaults are set (docs_test.go adds the
// keys a config snippet may leave out).
func read(v *viper.Viper, fs *pflag.FlagSet) (*settings, error) {
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
	for flag, key := range map[string]string{"job": "job.id", "etcd": "etcd.endpoints", "node-id": "node.id", "workers": "node.workers",
		"status-addr": "node.status-addr"} {
		if f := fs.Lookup(flag); f != nil && f.Changed {
			if err := v.BindPFlag(key, f); err != nil {
				return nil, err
			}
		}
	}
	// source.csv.header is true, false or "auto" (the plan looks at each
	// file's first line): a string the bool field can't take.
	headerAuto := false
	if h, ok := v.Get("source.csv.header").(string); ok && strings.EqualFold(strings.TrimSpace(h), "auto") {
		v.Set("source.csv.header", false)
		headerAuto = true
	}
	var s settings
	if err := v.Unmarshal(&s); err != nil {
		return nil, fmt.Errorf("config %s: %w (source.csv.header takes true, false or \"auto\")", path, err)
	}
	s.Source.CSV.HeaderAuto = headerAuto
	// Environment lists arrive as one string.
	for _, list := range []*[]string{&s.Etcd.Endpoints, &s.TiDB.PDAddrs, &s.Target.Host, &s.Target.Hosts} {
		if len(*list) == 1 && strings.Contains((*list)[0], ",") {
			*list = strings.Split((*list)[0], ",")
		}
	}
	s.readSecrets() // config_tls.go
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
	if s.Import.MaxErrors < 0 {
		bad = append(bad, "import.max-errors must not be negative")
	}
	if _, err := s.shardSize(); err != nil {
		bad = append(bad, err.Error())
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
	switch s.Import.DeferIndexes {
	case "auto", "off":
	default:
		bad = append(bad, fmt.Sprintf("import.defer-indexes %q: want auto or off", s.Import.DeferIndexes))
	}
	switch s.Post.Analyze {
	case "on", "off":
	default:
		bad = append(bad, fmt.Sprintf("post.analyze %q: want on or off", s.Post.Analyze))
	}
	switch s.Verify.Mode {
	case meta.VerifyDigest, meta.VerifyCount, meta.VerifyOff:
	default:
		bad = append(bad, fmt.Sprintf("verify.mode %q: want digest, count or off", s.Verify.Mode))
	}
	if _, err := checksum.RowHashBits(s.Verify.RowHashBits); err != nil {
		bad = append(bad, "verify.row-hash-bits: "+err.Error())
	}
	seen := map[string]bool{}
	for _, d := range s.spec().Source.Sources() {
		if err := meta.CheckSourceID(d.ID); err != nil {
			bad = append(bad, "source: "+err.Error())
		}
		if seen[d.ID] {
			bad = append(bad, fmt.Sprintf("source id %q is declared twice (source.dir is id %q)", d.ID, meta.MainSource))
		}
		seen[d.ID] = true
		if d.Dir == "" {
			bad = append(bad, fmt.Sprintf("source %q has no dir", d.ID))
		} else if storage.IsRemote(d.Dir) {
			if err := storage.CheckURL(d.Dir); err != nil {
				bad = append(bad, fmt.Sprintf("source %q: %v", d.ID, err))
			}
		}
	}
	if len(seen) == 0 {
		bad = append(bad, "no source: set source.dir or [[source.dirs]]")
	}
	if err := source.CheckRoutes(s.Source.Files); err != nil {
		bad = append(bad, err.Error())
	}
	if _, err := s.targetSpec(); err != nil {
		bad = append(bad, err.Error())
	}
	switch s.TiDB.PreSplit {
	case "auto", "off":
	default:
		bad = append(bad, fmt.Sprintf("tidb.pre-split %q: want auto or off", s.TiDB.PreSplit))
	}
	if s.TiDB.PauseTTL < 0 {
		bad = append(bad, "tidb.pause-ttl must not be negative")
	}
	bad = append(bad, s.validateSecurity()...) // config_tls.go
	if len(bad) > 0 {
		return fmt.Errorf("config: %s", strings.Join(bad, "; "))
	}
	return nil
}

// spec is the part of the settings every node must agree on.
func (s *settings) spec() meta.Spec {
	rh, _ := checksum.RowHashBits(s.Verify.RowHashBits) // validate says if not
	target, _ := s.targetSpec()                         // validate says if not
	shard, _ := s.shardSize()                           // and here
	return meta.Spec{
		Job:    s.Job.ID,
		Source: meta.SourceSpec{Dir: s.Source.Dir, Dirs: s.sourceDirs(), CSV: s.Source.CSV, Routes: s.Source.Files},
		Target: target,
		Import: meta.ImportSpec{ShardSize: shard, BatchSize: s.Import.BatchSize,
			OnDuplicate: s.Import.OnDuplicate, Mode: s.Import.Mode, Incremental: s.Import.Incremental, MaxErrors: s.Import.MaxErrors,
			DeferIndexes: s.Import.DeferIndexes},
		Post:   meta.PostSpec{Analyze: s.Post.Analyze == "on"},
		Verify: meta.VerifySpec{Mode: s.Verify.Mode, RowHash: rh.Name()},
		TiDB: meta.TiDBSpec{PDAddrs: s.TiDB.PDAddrs, ImportMode: s.TiDB.ImportMode, PauseSchedulers: s.TiDB.PauseSchedulers,
			PauseTTL: s.TiDB.PauseTTL, PreSplit: s.TiDB.PreSplit},
	}
}

// shardSize reads import.shard-size: "auto" (the plan chooses, see
// source.AutoShardSize) or a positive size in bytes, "67108864" or "64MiB".
func (s *settings) shardSize() (meta.ShardSize, error) {
	v := strings.TrimSpace(s.Import.ShardSize)
	if strings.EqualFold(v, "auto") {
		return meta.ShardSizeAuto, nil
	}
	n, err := source.ParseSize(v)
	if err != nil {
		return meta.ShardSizeAuto, fmt.Errorf("import.shard-size: %w, or \"auto\"", err)
	}
	if n < 1 {
		return meta.ShardSizeAuto, fmt.Errorf("import.shard-size %q must be positive, or \"auto\"", s.Import.ShardSize)
	}
	return meta.ShardSize(n), nil
}

// targetSpec is the target with its SQL servers: target.host and
// target.hosts together, each "host" (on target.port) or "host:port". One
// server is Host and Port as ever; several are also Hosts, as a sorted set,
// so that the spec does not depend on the order a node lists them in.
func (s *settings) targetSpec() (meta.TargetSpec, error) {
	t := meta.TargetSpec{Port: s.Target.Port, User: s.Target.User, TimeZone: s.Target.TimeZone}
	seen := map[string]bool{}
	var addrs []string
	for _, h := range append(slices.Clone(s.Target.Host), s.Target.Hosts...) {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		host, port := h, s.Target.Port
		if hh, pp, err := net.SplitHostPort(h); err == nil {
			p, perr := strconv.Atoi(pp)
			if perr != nil || p < 1 || p > 65535 {
				return t, fmt.Errorf("target.host %q: bad port", h)
			}
			host, port = hh, p
		}
		a := net.JoinHostPort(host, strconv.Itoa(port))
		if !seen[a] {
			seen[a] = true
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return t, errors.New("target.host is empty: name at least one SQL server")
	}
	if s.Target.Port < 1 || s.Target.Port > 65535 {
		return t, fmt.Errorf("target.port %d: want 1-65535", s.Target.Port)
	}
	slices.Sort(addrs)
	host, port, _ := net.SplitHostPort(addrs[0])
	t.Host = host
	t.Port, _ = strconv.Atoi(port)
	if len(addrs) > 1 {
		t.Hosts = addrs
	}
	return t, nil
}

func (s *settings) sourceDirs() []meta.SourceDir {
	var out []meta.SourceDir
	for _, d := range s.Source.Dirs {
		out = append(out, meta.SourceDir{ID: d.ID, Dir: d.Dir, Node: d.Node})
	}
	return out
}

func (s *settings) nodeConfig() node.Config {
	return node.Config{
		Spec: s.spec(), Prefix: s.Etcd.Prefix, Endpoints: s.Etcd.Endpoints, LeaseTTL: s.Etcd.LeaseTTL,
		NodeID: s.Node.ID, Workers: s.Node.Workers, Password: s.Target.Password,
		EmbedDir: s.Etcd.EmbedDir, StartTimeout: s.Node.StartTimeout, ProgressInterval: 2 * time.Second,
		StatusAddr: s.Node.StatusAddr, ExitWhenIdle: s.Node.ExitWhenIdle, Security: s.security(),
		S3: storage.S3Config{Endpoint: s.Source.S3.Endpoint, Region: s.Source.S3.Region, ForcePathStyle: s.Source.S3.ForcePathStyle,
			CAFile: s.Source.S3.CA, AccessKey: s.Source.S3.AccessKey, SecretKey: s.Source.S3.SecretAccessKey},
	}
}
