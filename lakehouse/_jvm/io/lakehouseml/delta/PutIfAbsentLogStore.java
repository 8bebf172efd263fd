package io.lakehouseml.delta;

import io.delta.storage.CloseableIterator;
import io.delta.storage.HadoopFileSystemLogStore;
import io.delta.storage.LineCloseableIterator;

import java.io.File;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Iterator;
import java.util.UUID;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * A Delta {@link io.delta.storage.LogStore} for the {@code file} scheme whose commits are
 * put-if-absent <em>across processes</em>, not just inside one JVM.
 *
 * <p><b>Why.</b> Delta's default store for local paths ({@link io.delta.storage.LocalLogStore})
 * checks that the commit file {@code _delta_log/NNN.json} is absent and then renames a temp file
 * onto it, inside a JVM-wide {@code synchronized} block. That is mutual exclusion within one JVM
 * only: between the check and the rename another process can create the same version, and
 * {@code rename(2)} silently replaces it, so an acknowledged commit is lost. In this project the
 * Spark JVM, our Python writer and delta-rs (other processes) all commit to the same local tables,
 * so Delta's "mutual exclusion" requirement for commits must hold across processes.
 *
 * <p><b>How.</b> {@code write(path, actions, overwrite=false)} writes the content to a unique
 * hidden temp file in the same directory, fsyncs it, and then publishes it with
 * {@link Files#createLink} (a POSIX {@code link(2)}): this is atomic and fails with
 * {@link FileAlreadyExistsException} when the target exists, which is exactly what Delta expects
 * for a lost race (it then retries/conflict-checks at the next version). The temp file is always
 * deleted afterwards. Readers never see a partial commit file. delta-rs' local object store uses
 * the same hard-link protocol for its conditional put, so the two interoperate.
 * {@code overwrite=true} (used for {@code _last_checkpoint}) writes a temp file and renames it over
 * the target atomically. Reads go through {@code java.nio} as well, so stale Hadoop {@code .crc}
 * side files (written by Hadoop's checksummed local file system) can never fail a read.
 * {@code listFrom} is inherited from {@link HadoopFileSystemLogStore}.
 *
 * <p>Configure with {@code spark.delta.logStore.file.impl=io.lakehouseml.delta.PutIfAbsentLogStore}.
 * Requires a local file system that supports hard links (ext4, xfs, btrfs, APFS, NFSv3+ ...).
 */
public class PutIfAbsentLogStore extends HadoopFileSystemLogStore {

    public PutIfAbsentLogStore(Configuration hadoopConf) {
        super(hadoopConf);
    }

    /** Maps a (possibly unqualified) Hadoop path of the local file system to a {@link File}. */
    static File toLocalFile(Path path, Configuration hadoopConf) throws IOException {
        URI uri = path.toUri();
        if (uri.getScheme() == null || !path.isAbsolute()) {
            FileSystem fs = path.getFileSystem(hadoopConf);
            uri = fs.makeQualified(path).toUri();
        }
        String scheme = uri.getScheme();
        if (scheme != null && !"file".equalsIgnoreCase(scheme)) {
            throw new IOException(PutIfAbsentLogStore.class.getSimpleName()
                + " only supports the file scheme, got: " + path);
        }
        // URI.getPath() is the *decoded* path: "/a%20b" -> "/a b", "/a%2525" -> "/a%25".
        return new File(uri.getPath());
    }

    @Override
    public CloseableIterator<String> read(Path path, Configuration hadoopConf) throws IOException {
        java.nio.file.Path p = toLocalFile(path, hadoopConf).toPath();
        try {
            return new LineCloseableIterator(
                new InputStreamReader(Files.newInputStream(p), StandardCharsets.UTF_8));
        } catch (NoSuchFileException e) {
            FileNotFoundException fnf = new FileNotFoundException(path.toString());
            fnf.initCause(e);
            throw fnf;
        }
    }

    @Override
    public void write(Path path, Iterator<String> actions, Boolean overwrite,
                      Configuration hadoopConf) throws IOException {
        File target = toLocalFile(path, hadoopConf);
        File dir = target.getParentFile();
        if (dir == null || !dir.isDirectory()) {
            throw new FileNotFoundException("No such file or directory: " + path.getParent());
        }
        java.nio.file.Path targetPath = target.toPath();
        java.nio.file.Path tempPath = new File(dir,
            "." + target.getName() + "." + UUID.randomUUID() + ".tmp").toPath();
        try {
            writeAndSync(tempPath, actions);
            if (Boolean.TRUE.equals(overwrite)) {
                // Drop a stale Hadoop checksum side file so Hadoop-based readers never
                // verify new content against an old checksum.
                Files.deleteIfExists(new File(dir, "." + target.getName() + ".crc").toPath());
                try {
                    Files.move(tempPath, targetPath,
                        StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (AtomicMoveNotSupportedException e) {
                    throw new IOException("Atomic rename not supported for " + path, e);
                }
            } else {
                // link(2): atomic, fails with EEXIST (FileAlreadyExistsException) if the
                // target exists, even when the competitor is another process.
                try {
                    Files.createLink(targetPath, tempPath);
                } catch (FileAlreadyExistsException e) {
                    throw new FileAlreadyExistsException(path.toString());
                } catch (UnsupportedOperationException e) {
                    throw new IOException("File system does not support hard links; cannot "
                        + "commit put-if-absent: " + path, e);
                }
            }
            syncDirectory(dir.toPath());
        } finally {
            try {
                Files.deleteIfExists(tempPath);
            } catch (IOException ignored) {
                // best effort; hidden temp files are ignored by Delta readers
            }
        }
    }

    private static void writeAndSync(java.nio.file.Path temp, Iterator<String> actions)
            throws IOException {
        try (FileChannel ch = FileChannel.open(temp,
                StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            while (actions.hasNext()) {
                ByteBuffer buf = ByteBuffer.wrap(
                    (actions.next() + "\n").getBytes(StandardCharsets.UTF_8));
                while (buf.hasRemaining()) {
                    ch.write(buf);
                }
            }
            ch.force(true);
        }
    }

    /** Makes the new directory entry durable (best effort; not supported everywhere). */
    private static void syncDirectory(java.nio.file.Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException | RuntimeException ignored) {
            // e.g. platforms that cannot open directories
        }
    }

    @Override
    public Boolean isPartialWriteVisible(Path path, Configuration hadoopConf) {
        return false;
    }
}
