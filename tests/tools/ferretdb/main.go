// Command ferretdb runs FerretDB with its embedded SQLite backend on a loopback port, for the
// project's tests, demo and benchmarks. It embeds the ferretdb package rather than building
// FerretDB's own command, whose module ships without build/version/version.txt and panics at start.
//
// It prints one line, "ready mongodb://127.0.0.1:PORT/", once the listener accepts connections,
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
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on (loopback)")
	dataDir := flag.String("data", "", "directory for the SQLite files (created if missing)")
	logLevel := flag.String("log-level", "warn", "FerretDB log level: debug, info, warn or error")
	flag.Parse()

	if *dataDir == "" {
		fail("-data is required")
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
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
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

	// MongoDBURI blocks until the listener is bound; then wait until it accepts a connection.
	uri := db.MongoDBURI()
	u, addr := uri, hostPort(uri)
	for deadline := time.Now().Add(30 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			fail("listener at %s never accepted a connection: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Printf("ready %s\n", u)

	<-done
}

// hostPort extracts host:port from "mongodb://host:port/...".
func hostPort(uri string) string {
	rest := uri[len("mongodb://"):]
	for i, c := range rest {
		if c == '/' || c == '?' {
			return rest[:i]
		}
	}
	return rest
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
