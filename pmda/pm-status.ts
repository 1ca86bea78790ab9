/**
 * PCP status codes a PMDA sends (pmapi.h of PCP 6.0.3: -(12345 + n)).
 * pmErrStr renders them; core/protocol/error-text.ts has the texts of those croot
 * also uses on the root socket.
 */
export { PM_ERR_GENERIC, PM_ERR_IPC, PM_ERR_NOCONTAINER } from '../core/errors/croot-error.js';

export const PM_ERR_TEXT = -12349;
export const PM_ERR_APPVERSION = -12350;
export const PM_ERR_VALUE = -12351;
export const PM_ERR_NAME = -12357;
export const PM_ERR_PMID = -12358;
export const PM_ERR_INDOM = -12359;
export const PM_ERR_INST = -12360;
export const PM_ERR_CONV = -12362;
export const PM_ERR_TRUNC = -12363;
export const PM_ERR_SIGN = -12364;
export const PM_ERR_PROFILE = -12365;
export const PM_ERR_EOF = -12368;
export const PM_ERR_PERMISSION = -12387;
export const PM_ERR_AGAIN = -12389;
export const PM_ERR_NOTCONN = -12391;
export const PM_ERR_NONLEAF = -12394;
export const PM_ERR_TYPE = -12397;
export const PM_ERR_NOLABELS = -12410;
export const PM_ERR_TOOBIG = -12444;
export const PM_ERR_NYI = -21344;

/** The pmErrStr text of each status above, as PCP 6.0.3 prints it. */
export const PM_STATUS_TEXT: ReadonlyMap<number, string> = new Map([
  [PM_ERR_TEXT, 'One-line or help text is not available'],
  [PM_ERR_APPVERSION, 'Metric not supported by this version of monitored application'],
  [PM_ERR_VALUE, 'Missing metric value(s)'],
  [PM_ERR_NAME, 'Unknown metric name'],
  [PM_ERR_PMID, 'Unknown or illegal metric identifier'],
  [PM_ERR_INDOM, 'Unknown or illegal instance domain identifier'],
  [PM_ERR_INST, 'Unknown or illegal instance identifier'],
  [PM_ERR_CONV, 'Impossible value or scale conversion'],
  [PM_ERR_TRUNC, 'Truncation in value conversion'],
  [PM_ERR_SIGN, 'Negative value in conversion to unsigned'],
  [PM_ERR_PROFILE, 'Explicit instance identifier(s) required'],
  [PM_ERR_EOF, 'IPC channel closed'],
  [PM_ERR_PERMISSION, 'No permission to perform requested operation'],
  [PM_ERR_AGAIN, 'Try again. Information not currently available'],
  [PM_ERR_NOTCONN, 'Not Connected'],
  [PM_ERR_NONLEAF, 'Metric name is not a leaf in PMNS'],
  [PM_ERR_TYPE, 'Unknown or illegal metric type'],
  [PM_ERR_NOLABELS, 'No support for metric label metadata'],
  [PM_ERR_TOOBIG, 'Result size exceeded'],
  [PM_ERR_NYI, 'Functionality not yet implemented'],
]);
