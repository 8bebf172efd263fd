package io.lakehouseml.delta;

import io.delta.storage.HadoopFileSystemLogStore;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.util.Arrays;
import java.util.Iterator;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.s3a.S3AFileSystem;

import software.amazon.awssdk.core.ResponseInputStream;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.GetObjectRequest;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;
import software.amazon.awssdk.services.s3.model.S3Exception;

/**
 * A Delta {@link io.delta.storage.LogStore} for Hadoop's S3A file system ({@code s3a://}) whose
 * commits are put-if-absent <em>across drivers</em>: the store itself decides which writer gets a
 * version, with a conditional PUT ({@code If-None-Match: *}).
 *
 * <p><b>Why.</b> OSS Delta's {@code S3SingleDriverLogStore} checks that {@code _delta_log/NNN.json}
 * is absent and then writes it, under a lock held in the JVM: two clusters (or a Spark job and a
 * delta-rs writer) can both "create" the same version, and the second PUT silently replaces the
 * first, losing an acknowledged commit. Delta's other answer, {@code S3DynamoDBLogStore}, needs a
 * DynamoDB table. Amazon S3 (since August 2024) and S3-compatible stores now offer put-if-absent
 * themselves, which is what delta-rs and this project's own commit path use; this store gives the
 * same protocol to delta-spark, so every engine excludes every other one on the same table.
 *
 * <p><b>How.</b> {@code write(path, actions, overwrite=false)} sends the whole commit in one
 * {@code PutObject} with the header {@code If-None-Match: *}, through the S3 client of the
 * table's {@link S3AFileSystem} (its endpoint, region, credentials and path-style setting). A PUT is
 * atomic, so readers never see a partial commit. HTTP 412 Precondition Failed (the key exists)
 * becomes {@link FileAlreadyExistsException} with the {@link S3Exception} as its cause, which is what
 * Delta expects for a lost race: it re-reads the log, checks for conflicts and retries at the next
 * version. HTTP 409 (S3's {@code ConditionalRequestConflict}, a concurrent conditional write in
 * flight) is retried a few times with back-off, as S3 asks. A 412 whose existing object is byte for
 * byte our own commit (a PUT the SDK retried after its first attempt had landed) is our success,
 * not a conflict: every commit carries a unique {@code txnId}. {@link #lostRaces()} counts the
 * 412s. {@code overwrite=true} (Delta uses it for {@code _last_checkpoint}) is a plain PUT. Reads
 * and listings are inherited from {@link HadoopFileSystemLogStore} (S3 lists are strongly
 * consistent).
 *
 * <p>Configure with {@code spark.delta.logStore.s3a.impl=io.lakehouseml.delta.S3PutIfAbsentLogStore}
 * (and {@code .s3.impl} where {@code fs.s3.impl} is S3A). Needs hadoop-aws and the AWS SDK v2
 * bundle on the classpath, and a store that honours {@code If-None-Match: *} on PUT.
 */
public class S3PutIfAbsentLogStore extends HadoopFileSystemLogStore {

    static final String IF_NONE_MATCH = "If-None-Match";
    private static final int CONFLICT_RETRIES = 5;
    private static final AtomicLong LOST_RACES = new AtomicLong();

    public S3PutIfAbsentLogStore(Configuration hadoopConf) {
        super(hadoopConf);
    }

    /** How many commits this JVM lost to another writer (HTTP 412) since it started: for tests and metrics. */
    public static long lostRaces() {
        return LOST_RACES.get();
    }

    @Override
    public void write(Path path, Iterator<String> actions, Boolean overwrite,
                      Configuration hadoopConf) throws IOException {
        FileSystem fs = path.getFileSystem(hadoopConf);
        if (!(fs instanceof S3AFileSystem)) {
            throw new IOException(S3PutIfAbsentLogStore.class.getSimpleName()
                + " needs Hadoop's S3A file system (s3a://), got " + fs.getClass().getName()
                + " for " + path);
        }
        S3AFileSystem s3a = (S3AFileSystem) fs;
        String bucket = s3a.getBucket();
        String key = s3a.pathToKey(s3a.makeQualified(path));
        byte[] body = join(actions);
        boolean ifAbsent = !Boolean.TRUE.equals(overwrite);
        S3Client client = s3a.getS3AInternals().getAmazonS3Client("Delta commit " + key);

        PutObjectRequest.Builder request = PutObjectRequest.builder()
            .bucket(bucket).key(key).contentLength((long) body.length)
            .contentType("application/json");
        if (ifAbsent) {
            request.overrideConfiguration(o -> o.putHeader(IF_NONE_MATCH, "*"));
        }
        PutObjectRequest put = request.build();
        for (int attempt = 0; ; attempt++) {
            try {
                client.putObject(put, RequestBody.fromBytes(body));
                return;
            } catch (S3Exception e) {
                if (ifAbsent && e.statusCode() == 412) {
                    if (isOurs(client, bucket, key, body)) {
                        return;  // an earlier attempt of this very PUT created it
                    }
                    LOST_RACES.incrementAndGet();
                    FileAlreadyExistsException exists = new FileAlreadyExistsException(
                        path.toString(), null,
                        "HTTP 412 Precondition Failed: s3://" + bucket + "/" + key
                            + " exists (If-None-Match: *); another writer committed this version");
                    exists.initCause(e);
                    throw exists;
                }
                if (ifAbsent && e.statusCode() == 409 && attempt < CONFLICT_RETRIES) {
                    backOff(attempt, path);
                    continue;
                }
                throw new IOException("PUT s3://" + bucket + "/" + key + " failed: HTTP "
                    + e.statusCode() + " " + e.getMessage(), e);
            } catch (SdkException e) {
                throw new IOException("PUT s3://" + bucket + "/" + key + " failed: " + e.getMessage(), e);
            }
        }
    }

    private static byte[] join(Iterator<String> actions) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        while (actions.hasNext()) {
            byte[] line = (actions.next() + "\n").getBytes(StandardCharsets.UTF_8);
            out.write(line, 0, line.length);
        }
        return out.toByteArray();
    }

    /** True when the object at the key holds exactly {@code body} (so the version is ours). */
    private static boolean isOurs(S3Client client, String bucket, String key, byte[] body) {
        GetObjectRequest get = GetObjectRequest.builder().bucket(bucket).key(key).build();
        try (ResponseInputStream<GetObjectResponse> in = client.getObject(get)) {
            Long length = in.response().contentLength();
            if (length != null && length != body.length) {
                return false;
            }
            return Arrays.equals(in.readAllBytes(), body);
        } catch (IOException | SdkException e) {
            return false;  // cannot tell: report the conflict, Delta re-reads the log and decides
        }
    }

    private static void backOff(int attempt, Path path) throws InterruptedIOException {
        try {
            Thread.sleep(50L << attempt);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while committing " + path);
        }
    }

    @Override
    public Boolean isPartialWriteVisible(Path path, Configuration hadoopConf) {
        return false;
    }
}
