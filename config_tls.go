package main

// TLS and secrets in storm.toml. All of it is per node (paths differ from
// host to host, secrets come from each host's environment or files), so
// none of it is part of the job spec that nodes compare:
//
//	[etcd]        username, password, password-file     (STORM_ETCD_PASSWORD)
//	[etcd.tls]    ca, cert, key
//	[target]      password, password-file               (STORM_TARGET_PASSWORD)
//	[target.tls]  mode (disabled | preferred | required | verify-identity), ca, cert, key
//	[tidb.tls]    ca, cert, key
//	[node.status-tls] cert, key, ca (clients must present a certificate it signed)
//	[source.s3]   endpoint, region, force-path-style, ca, access-key,
//	              secret-access-key, secret-access-key-file (STORM_SOURCE_S3_SECRET_ACCESS_KEY)

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/viper"

	"storm/import/sink"
	"storm/import/tikv"
	"storm/internal/tlsfiles"
	"storm/node"
)

// tlsSettings are the PEM files of a *.tls table.
type tlsSettings struct {
	CA   string `mapstructure:"ca"`
	Cert string `mapstructure:"cert"`
	Key  string `mapstructure:"key"`
}

func (t tlsSettings) files() tlsfiles.Files {
	return tlsfiles.Files{CA: t.CA, Cert: t.Cert, Key: t.Key}
}

// targetTLSSettings is [target.tls]: MySQL's ssl-mode and the files.
type targetTLSSettings struct {
	Mode string `mapstructure:"mode"`
	CA   string `mapstructure:"ca"`
	Cert string `mapstructure:"cert"`
	Key  string `mapstructure:"key"`
}

func (t targetTLSSettings) files() tlsfiles.Files {
	return tlsfiles.Files{CA: t.CA, Cert: t.Cert, Key: t.Key}
}

// s3Settings is [source.s3]. Without access-key, the AWS credential chain
// (AWS_ACCESS_KEY_ID, the shared files, an instance role) is used.
type s3Settings struct {
	Endpoint            string `mapstructure:"endpoint"`
	Region              string `mapstructure:"region"`
	ForcePathStyle      bool   `mapstructure:"force-path-style"`
	CA                  string `mapstructure:"ca"`
	AccessKey           string `mapstructure:"access-key"`
	SecretAccessKey     string `mapstructure:"secret-access-key"`
	SecretAccessKeyFile string `mapstructure:"secret-access-key-file"`
}

// secretState is what reading the password files found, kept apart so that
// a client subcommand is not failed by a node-only setting.
type secretState struct {
	etcdErr, targetErr, s3Err error
	warnings                  []string
}

// securityDefaults registers every key: viper's environment lookup only
// sees known keys (STORM_ETCD_PASSWORD, STORM_TARGET_TLS_MODE, ...).
func securityDefaults(v *viper.Viper) {
	for _, k := range []string{
		"etcd.username", "etcd.password", "etcd.password-file",
		"etcd.tls.ca", "etcd.tls.cert", "etcd.tls.key",
		"target.password-file", "target.tls.ca", "target.tls.cert", "target.tls.key",
		"tidb.tls.ca", "tidb.tls.cert", "tidb.tls.key",
		"node.status-tls.ca", "node.status-tls.cert", "node.status-tls.key",
		"source.s3.endpoint", "source.s3.region", "source.s3.ca",
		"source.s3.access-key", "source.s3.secret-access-key", "source.s3.secret-access-key-file",
	} {
		v.SetDefault(k, "")
	}
	v.SetDefault("source.s3.force-path-style", false)
	v.SetDefault("target.tls.mode", sink.TLSPreferred)
}

// readSecrets fills the passwords from their files.
func (s *settings) readSecrets() {
	var err error
	s.Etcd.Password, err = passwordFrom("etcd.password", "STORM_ETCD_PASSWORD", s.Etcd.Password, s.Etcd.PasswordFile, &s.secrets.warnings)
	s.secrets.etcdErr = err
	s.Target.Password, err = passwordFrom("target.password", "STORM_TARGET_PASSWORD", s.Target.Password, s.Target.PasswordFile, &s.secrets.warnings)
	s.secrets.targetErr = err
	s.Source.S3.SecretAccessKey, err = passwordFrom("source.s3.secret-access-key", "STORM_SOURCE_S3_SECRET_ACCESS_KEY",
		s.Source.S3.SecretAccessKey, s.Source.S3.SecretAccessKeyFile, &s.secrets.warnings)
	s.secrets.s3Err = err
}

// passwordFrom returns the password of the config or the environment, or
// the one in file: not both. The file's trailing newline is not part of it;
// a file others can read is warned about.
func passwordFrom(key, env, value, file string, warnings *[]string) (string, error) {
	if file == "" {
		return value, nil
	}
	if value != "" {
		return "", fmt.Errorf("%s (or %s) and %s-file are both set: keep one", key, env, key)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("%s-file: %w", key, err)
	}
	if fi.Mode().Perm()&0o044 != 0 {
		*warnings = append(*warnings, fmt.Sprintf("%s-file %s is readable by group or others (mode %04o): chmod 600 it",
			key, file, fi.Mode().Perm()))
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s-file: %w", key, err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("%s-file %s is empty", key, file)
	}
	return pw, nil
}

// validateEtcdSecurity checks what every subcommand uses to reach etcd.
func (s *settings) validateEtcdSecurity() []string {
	var bad []string
	if s.secrets.etcdErr != nil {
		bad = append(bad, s.secrets.etcdErr.Error())
	}
	if s.Etcd.TLS.files().IsSet() {
		if err := s.Etcd.TLS.files().Check("etcd.tls"); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if (s.Etcd.Username == "") != (s.Etcd.Password == "") && s.secrets.etcdErr == nil {
		bad = append(bad, "etcd.username and etcd.password (STORM_ETCD_PASSWORD, etcd.password-file) go together")
	}
	return bad
}

// validateSecurity checks the TLS and secret settings of a node.
func (s *settings) validateSecurity() []string {
	bad := s.validateEtcdSecurity()
	if s.secrets.targetErr != nil {
		bad = append(bad, s.secrets.targetErr.Error())
	}
	if !slices.Contains(sink.TLSModes, s.Target.TLS.Mode) {
		bad = append(bad, fmt.Sprintf("target.tls.mode %q: want %s", s.Target.TLS.Mode, strings.Join(sink.TLSModes, ", ")))
	}
	if f := s.Target.TLS.files(); f.IsSet() && s.Target.TLS.Mode != sink.TLSDisabled {
		if err := f.Check("target.tls"); err != nil {
			bad = append(bad, err.Error())
		}
	}
	bad = append(bad, s.validateS3()...)
	if err := tikv.CheckTLS(s.TiDB.TLS.files()); err != nil {
		bad = append(bad, err.Error())
	}
	if f := s.Node.StatusTLS.files(); f.IsSet() {
		if _, err := f.Server("node.status-tls"); err != nil {
			bad = append(bad, err.Error())
		}
	}
	return bad
}

// securityWarnings are said once the logger exists.
func (s *settings) securityWarnings() []string {
	w := slices.Clone(s.secrets.warnings)
	if s.Target.TLS.Mode == sink.TLSDisabled && s.Target.TLS.files().IsSet() {
		w = append(w, "target.tls.mode is disabled: target.tls.ca, cert and key are not used")
	}
	return w
}

// etcdAccess is how subcommands reach etcd.
func (s *settings) etcdAccess() node.EtcdAccess {
	return node.EtcdAccess{Endpoints: s.Etcd.Endpoints, TLS: s.Etcd.TLS.files(), Username: s.Etcd.Username, Password: s.Etcd.Password}
}

// security is node.Config's Security.
func (s *settings) security() node.Security {
	return node.Security{
		Etcd: s.Etcd.TLS.files(), EtcdUser: s.Etcd.Username, EtcdPassword: s.Etcd.Password,
		TargetMode: s.Target.TLS.Mode, Target: s.Target.TLS.files(),
		TiDB:   s.TiDB.TLS.files(),
		Status: s.Node.StatusTLS.files(),
	}
}

// validateS3 checks [source.s3].
func (s *settings) validateS3() []string {
	var bad []string
	c := s.Source.S3
	if s.secrets.s3Err != nil {
		bad = append(bad, s.secrets.s3Err.Error())
	} else if (c.AccessKey == "") != (c.SecretAccessKey == "") {
		bad = append(bad, "source.s3.access-key and source.s3.secret-access-key (STORM_SOURCE_S3_SECRET_ACCESS_KEY, "+
			"source.s3.secret-access-key-file) go together")
	}
	if c.Endpoint != "" && !strings.HasPrefix(c.Endpoint, "http://") && !strings.HasPrefix(c.Endpoint, "https://") {
		bad = append(bad, fmt.Sprintf("source.s3.endpoint %q: want an http:// or https:// URL", c.Endpoint))
	}
	if c.CA != "" {
		if _, err := os.Stat(c.CA); err != nil {
			bad = append(bad, "source.s3.ca: "+err.Error())
		}
	}
	return bad
}
