// Package jobctl is a job as the CLI sees it from outside its nodes, with
// nothing but etcd: its status summed up from its records (`storm status`,
// `storm job show`, `storm job list`, and a node's /status, which serves
// the same document), and the steering of a finished job (`storm job
// retry`, `storm job forget`). It reads and writes only the keys meta
// names; a node's own life (join, plan, workers, verify) is node's.
package jobctl
