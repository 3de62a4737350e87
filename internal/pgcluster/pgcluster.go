// Package pgcluster starts and stops a private PostgreSQL cluster from the
// local server binaries: initdb into a directory, listen on loopback only,
// scram-sha-256 for every connection, and a socket inside the data
// directory. `bulkhead dev` and the test harness use it.
//
// PostgreSQL refuses to run as root. When the process is root, the cluster
// runs as the "postgres" system user (the Debian package creates it), and
// the directory is handed to that user.
package pgcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// InstallHint is what to run when no server binaries are found.
const InstallHint = "apt-get update && apt-get install -y postgresql-15 postgresql-contrib"

// ErrNoBinaries is returned when initdb and pg_ctl cannot be found.
var ErrNoBinaries = errors.New("PostgreSQL server binaries not found (initdb, pg_ctl); install them with: " + InstallHint)

// Cluster is a running private cluster.
type Cluster struct {
	Dir      string // the cluster's directory: PGDATA (see PGData) and postgres.log
	Port     int
	Password string // the superuser's password
	bindir   string
	cred     *syscall.Credential
}

// BinDir finds the directory that holds initdb and pg_ctl: $BULKHEAD_PG_BINDIR,
// then `pg_config --bindir`, then Debian's /usr/lib/postgresql/<v>/bin.
func BinDir() (string, error) {
	var cands []string
	if d := os.Getenv("BULKHEAD_PG_BINDIR"); d != "" {
		cands = append(cands, d)
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		cands = append(cands, strings.TrimSpace(string(out)))
	}
	for _, v := range []string{"17", "16", "15"} {
		cands = append(cands, "/usr/lib/postgresql/"+v+"/bin")
	}
	for _, d := range cands {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Options configure Start.
type Options struct {
	Dir  string // data directory; created if missing, reused if it holds a cluster
	Port int    // 0 picks a free port
	// Password for the superuser "postgres" on a new cluster; random when empty.
	// For an existing cluster, the caller passes the one it stored.
	Password string
	// Settings are extra postgresql.conf lines.
	Settings map[string]string
	Log      *bytes.Buffer // where server start output goes; may be nil
}

// Start initialises the cluster if needed and starts it.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	bindir, err := BinDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: o.Dir, Port: o.Port, Password: o.Password, bindir: bindir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres system user (from the postgresql package): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if c.Port == 0 {
		if c.Port, err = freePort(); err != nil {
			return nil, err
		}
	}
	pgdata := c.PGData()
	if _, err := os.Stat(filepath.Join(pgdata, "PG_VERSION")); err != nil {
		if c.Password == "" {
			c.Password = randomHex(16)
		}
		if err := c.initdb(ctx, pgdata); err != nil {
			return nil, err
		}
	} else if c.Password == "" {
		return nil, errors.New("pgcluster: an existing cluster needs its stored password")
	}
	if err := c.writeConf(pgdata, o.Settings); err != nil {
		return nil, err
	}
	if err := c.run(ctx, "pg_ctl", "-D", pgdata, "-l", filepath.Join(c.Dir, "postgres.log"), "-w", "-t", "60", "start"); err != nil {
		logTail, _ := os.ReadFile(filepath.Join(c.Dir, "postgres.log"))
		return nil, fmt.Errorf("pgcluster: start: %w\n%s", err, tail(logTail, 2000))
	}
	return c, nil
}

func (c *Cluster) initdb(ctx context.Context, pgdata string) error {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return err
	}
	pwfile := filepath.Join(c.Dir, ".pwfile")
	if err := os.WriteFile(pwfile, []byte(c.Password+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	if err := c.chown(c.Dir); err != nil {
		return err
	}
	if err := c.chown(pwfile); err != nil {
		return err
	}
	err := c.run(ctx, "initdb", "-D", pgdata, "-U", "postgres", "--pwfile", pwfile,
		"--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync")
	if err != nil {
		return fmt.Errorf("pgcluster: initdb: %w", err)
	}
	return nil
}

func (c *Cluster) writeConf(pgdata string, extra map[string]string) error {
	conf := map[string]string{
		"listen_addresses":                  "'127.0.0.1'",
		"port":                              strconv.Itoa(c.Port),
		"unix_socket_directories":           "'" + c.Dir + "'",
		"fsync":                             "on",
		"max_connections":                   "200",
		"log_parameter_max_length":          "0",
		"log_parameter_max_length_on_error": "0",
		"password_encryption":               "'scram-sha-256'",
	}
	for k, v := range extra {
		conf[k] = v
	}
	var b strings.Builder
	b.WriteString("# written by bulkhead; overrides postgresql.conf\n")
	for k, v := range conf {
		fmt.Fprintf(&b, "%s = %s\n", k, v)
	}
	p := filepath.Join(pgdata, "postgresql.auto.conf")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		return err
	}
	hba := "# written by bulkhead: scram everywhere, loopback and the private socket only\n" +
		"local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(pgdata, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return err
	}
	if err := c.chown(p); err != nil {
		return err
	}
	return c.chown(filepath.Join(pgdata, "pg_hba.conf"))
}

// Stop stops the cluster (fast shutdown).
func (c *Cluster) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return c.run(ctx, "pg_ctl", "-D", filepath.Join(c.Dir, "pgdata"), "-m", "fast", "-w", "stop")
}

// URL returns a connection URL for role on database db over loopback TCP.
func (c *Cluster) URL(role, password, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(role, password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)), Path: "/" + db}
	u.RawQuery = "sslmode=disable"
	return u.String()
}

// PGData is the cluster's data directory.
func (c *Cluster) PGData() string { return filepath.Join(c.Dir, "pgdata") }

// AdminURL returns the superuser's URL for database db.
func (c *Cluster) AdminURL(db string) string { return c.URL("postgres", c.Password, db) }

func (c *Cluster) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bindir, name), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, tail(out.Bytes(), 2000))
	}
	return nil
}

func (c *Cluster) chown(p string) error {
	if c.cred == nil {
		return nil
	}
	return os.Chown(p, int(c.cred.Uid), int(c.cred.Gid))
}

// Chown hands p to the cluster's system user when running as root, so the
// server can create files under it.
func (c *Cluster) Chown(p string) error { return c.chown(p) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
