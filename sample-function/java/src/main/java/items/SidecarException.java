package items;

/** The sidecar refused a call (its status and error_code), or could not be reached (status 0). */
public final class SidecarException extends RuntimeException {
    final int status;
    final String code;
    final String retryAfter; // the Retry-After header, or null

    SidecarException(int status, String code, String message, String retryAfter) {
        super(message);
        this.status = status;
        this.code = code;
        this.retryAfter = retryAfter;
    }
}
