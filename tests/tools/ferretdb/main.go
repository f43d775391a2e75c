// Command ferretdb runs FerretDB with its embedded SQLite backend on a loopback port, for the
// project's tests, demo and benchmarks. It embeds the ferretdb package rather than building
// FerretDB's own command, whose module ships without build/version/version.txt and panics at start.
//
// It prints one line, "ready mongodb://127.0.0.1:PORT/", once the listeners accept connections,
// stops cleanly on SIGTERM or SIGINT, and stops by itself when the process that started it dies, so
// an interrupted test run never leaves a server behind.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "", "TCP address to listen on, such as 127.0.0.1:27017 (loopback)")
	listenTLS := flag.String("listen-tls", "", "also listen with TLS on this address (needs -tls-cert and -tls-key)")
	tlsCert := flag.String("tls-cert", "", "PEM server certificate for -listen-tls")
	tlsKey := flag.String("tls-key", "", "PEM private key for -listen-tls")
	dataDir := flag.String("data", "", "directory for the SQLite files (created if missing)")
	logLevel := flag.String("log-level", "warn", "FerretDB log level: debug, info, warn or error")
	flag.Parse()

	if *dataDir == "" || *listen == "" {
		fail("-data and -listen are required")
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		fail("-data: %v", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		fail("-data: %v", err)
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fail("-log-level: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	db, err := ferretdb.New(&ferretdb.Config{
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		Listener: ferretdb.ListenerConfig{
			TCP:         *listen,
			TLS:         *listenTLS,
			TLSCertFile: *tlsCert,
			TLSKeyFile:  *tlsKey,
		},
	})
	if err != nil {
		fail("%v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go stopWhenParentDies(ctx, cancel)

	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := db.Run(ctx); err != nil {
			logger.Error("ferretdb stopped", "error", err)
		}
	}()

	// MongoDBURI blocks until the listeners are bound (it names the TLS one when there is one);
	// then wait until each accepts a connection.
	db.MongoDBURI()
	addrs := []string{*listen}
	if *listenTLS != "" {
		addrs = append(addrs, *listenTLS)
	}
	for _, addr := range addrs {
		waitAccepting(addr)
	}
	fmt.Printf("ready mongodb://%s/\n", *listen)

	<-done
}

// waitAccepting waits until addr accepts a TCP connection, for at most 30 s.
func waitAccepting(addr string) {
	for deadline := time.Now().Add(30 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			fail("listener at %s never accepted a connection: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func stopWhenParentDies(ctx context.Context, cancel context.CancelFunc) {
	parent := os.Getppid()
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if os.Getppid() != parent {
				cancel()
				return
			}
		}
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "ferretdb: "+format+"\n", args...)
	os.Exit(1)
}
