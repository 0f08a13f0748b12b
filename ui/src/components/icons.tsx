/** A small icon set (24×24, 2px strokes, currentColor), so the UI needs no icon font. */
import type { ReactNode, SVGProps } from 'react';

type IconProps = SVGProps<SVGSVGElement> & { size?: number };

function icon(paths: ReactNode, name: string) {
  function Icon({ size = 16, ...props }: IconProps) {
    return (
      <svg
        width={size}
        height={size}
        viewBox="0 0 24 24"
        fill="none"
        stroke="currentColor"
        strokeWidth={2}
        strokeLinecap="round"
        strokeLinejoin="round"
        aria-hidden="true"
        focusable="false"
        {...props}
      >
        {paths}
      </svg>
    );
  }
  Icon.displayName = `Icon${name}`;
  return Icon;
}

export const IconLogo = icon(
  <>
    <path d="M3 17c4 0 5-10 9-10s5 10 9 10" />
    <circle cx="3" cy="17" r="1.5" fill="currentColor" />
    <circle cx="21" cy="17" r="1.5" fill="currentColor" />
  </>,
  'Logo',
);
export const IconCondition = icon(
  <>
    <path d="M12 3l9 9-9 9-9-9z" />
    <path d="M9.5 10a2.5 2.5 0 1 1 3.5 2.3c-.6.3-1 .8-1 1.4v.3" />
    <path d="M12 16.5h.01" />
  </>,
  'Condition',
);
export const IconTruck = icon(
  <>
    <path d="M3 6h11v10H3z" />
    <path d="M14 9h4l3 3v4h-7" />
    <circle cx="7" cy="17.5" r="1.5" />
    <circle cx="17" cy="17.5" r="1.5" />
  </>,
  'Truck',
);
export const IconReceipt = icon(
  <>
    <path d="M6 3h12v18l-3-2-3 2-3-2-3 2z" />
    <path d="M9 8h6M9 12h6M9 16h3" />
  </>,
  'Receipt',
);
export const IconKey = icon(
  <>
    <circle cx="8" cy="15" r="4" />
    <path d="M11 12l9-9M17 6l3 3M14 9l2 2" />
  </>,
  'Key',
);
export const IconSend = icon(
  <>
    <path d="M22 2L11 13" />
    <path d="M22 2l-7 20-4-9-9-4z" />
  </>,
  'Send',
);
export const IconGlobe = icon(
  <>
    <circle cx="12" cy="12" r="9" />
    <path d="M3 12h18M12 3a14 14 0 0 1 0 18M12 3a14 14 0 0 0 0 18" />
  </>,
  'Globe',
);
export const IconStop = icon(
  <>
    <path d="M8 3h8l5 5v8l-5 5H8l-5-5V8z" />
    <path d="M9 9l6 6M15 9l-6 6" />
  </>,
  'Stop',
);
export const IconBox = icon(
  <>
    <path d="M21 8l-9-5-9 5v8l9 5 9-5z" />
    <path d="M3 8l9 5 9-5M12 13v8" />
  </>,
  'Box',
);
export const IconSearch = icon(
  <>
    <circle cx="11" cy="11" r="7" />
    <path d="M21 21l-4.3-4.3" />
  </>,
  'Search',
);
export const IconUndo = icon(
  <>
    <path d="M9 14L4 9l5-5" />
    <path d="M4 9h11a5 5 0 0 1 0 10h-3" />
  </>,
  'Undo',
);
export const IconRedo = icon(
  <>
    <path d="M15 14l5-5-5-5" />
    <path d="M20 9H9a5 5 0 0 0 0 10h3" />
  </>,
  'Redo',
);
export const IconHistory = icon(
  <>
    <path d="M3 12a9 9 0 1 0 3-6.7L3 8" />
    <path d="M3 3v5h5M12 7v5l3 2" />
  </>,
  'History',
);
export const IconLayout = icon(
  <>
    <rect x="9" y="3" width="6" height="5" rx="1" />
    <rect x="3" y="16" width="6" height="5" rx="1" />
    <rect x="15" y="16" width="6" height="5" rx="1" />
    <path d="M12 8v4M6 16v-2h12v2" />
  </>,
  'Layout',
);
export const IconCode = icon(
  <>
    <path d="M16 18l6-6-6-6M8 6l-6 6 6 6" />
  </>,
  'Code',
);
export const IconPlay = icon(<path d="M6 4l14 8-14 8z" />, 'Play');
export const IconTrash = icon(
  <>
    <path d="M3 6h18M8 6V4h8v2M6 6l1 15h10l1-15" />
  </>,
  'Trash',
);
export const IconPlus = icon(<path d="M12 5v14M5 12h14" />, 'Plus');
export const IconClose = icon(<path d="M18 6L6 18M6 6l12 12" />, 'Close');
export const IconCheck = icon(<path d="M20 6L9 17l-5-5" />, 'Check');
export const IconAlert = icon(
  <>
    <path d="M12 3l10 18H2z" />
    <path d="M12 10v4M12 17.5h.01" />
  </>,
  'Alert',
);
export const IconInfo = icon(
  <>
    <circle cx="12" cy="12" r="9" />
    <path d="M12 11v6M12 7.5h.01" />
  </>,
  'Info',
);
export const IconChevronDown = icon(<path d="M6 9l6 6 6-6" />, 'ChevronDown');
export const IconChevronRight = icon(<path d="M9 6l6 6-6 6" />, 'ChevronRight');
export const IconArrowRight = icon(<path d="M5 12h14M13 6l6 6-6 6" />, 'ArrowRight');
export const IconLogout = icon(
  <>
    <path d="M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4" />
    <path d="M16 17l5-5-5-5M21 12H9" />
  </>,
  'Logout',
);
export const IconBuilding = icon(
  <>
    <path d="M4 21V5a2 2 0 0 1 2-2h8a2 2 0 0 1 2 2v16" />
    <path d="M16 9h2a2 2 0 0 1 2 2v10M2 21h20M8 7h4M8 11h4M8 15h4" />
  </>,
  'Building',
);
export const IconFile = icon(
  <>
    <path d="M14 3H6a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V9z" />
    <path d="M14 3v6h6" />
  </>,
  'File',
);
export const IconDownload = icon(
  <>
    <path d="M12 3v12M7 10l5 5 5-5M4 21h16" />
  </>,
  'Download',
);
export const IconUpload = icon(
  <>
    <path d="M12 21V9M7 14l5-5 5 5M4 3h16" />
  </>,
  'Upload',
);
export const IconCopy = icon(
  <>
    <rect x="9" y="9" width="12" height="12" rx="2" />
    <path d="M5 15H4a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1h10a1 1 0 0 1 1 1v1" />
  </>,
  'Copy',
);
export const IconEye = icon(
  <>
    <path d="M2 12s4-7 10-7 10 7 10 7-4 7-10 7S2 12 2 12z" />
    <circle cx="12" cy="12" r="3" />
  </>,
  'Eye',
);
export const IconGrip = icon(
  <>
    <circle cx="9" cy="6" r="1" fill="currentColor" />
    <circle cx="15" cy="6" r="1" fill="currentColor" />
    <circle cx="9" cy="12" r="1" fill="currentColor" />
    <circle cx="15" cy="12" r="1" fill="currentColor" />
    <circle cx="9" cy="18" r="1" fill="currentColor" />
    <circle cx="15" cy="18" r="1" fill="currentColor" />
  </>,
  'Grip',
);
export const IconBraces = icon(
  <>
    <path d="M8 3H7a2 2 0 0 0-2 2v5a2 2 0 0 1-2 2 2 2 0 0 1 2 2v5a2 2 0 0 0 2 2h1" />
    <path d="M16 21h1a2 2 0 0 0 2-2v-5a2 2 0 0 1 2-2 2 2 0 0 1-2-2V5a2 2 0 0 0-2-2h-1" />
  </>,
  'Braces',
);
export const IconDiff = icon(
  <>
    <path d="M12 3v10M7 8h10M7 19h10" />
  </>,
  'Diff',
);
export const IconFlow = icon(
  <>
    <rect x="3" y="3" width="7" height="5" rx="1.5" />
    <rect x="14" y="16" width="7" height="5" rx="1.5" />
    <rect x="3" y="16" width="7" height="5" rx="1.5" />
    <path d="M6.5 8v8M6.5 12h11v4" />
  </>,
  'Flow',
);
export const IconActivity = icon(<path d="M3 12h4l3-8 4 16 3-8h4" />, 'Activity');
export const IconRotate = icon(
  <>
    <path d="M3 12a9 9 0 1 0 3-6.7" />
    <path d="M3 4v5h5" />
  </>,
  'Rotate',
);
export const IconClock = icon(
  <>
    <circle cx="12" cy="12" r="9" />
    <path d="M12 7v5l3 2" />
  </>,
  'Clock',
);
export const IconMinus = icon(<path d="M6 12h12" />, 'Minus');
export const IconCircle = icon(<circle cx="12" cy="12" r="7" />, 'Circle');
export const IconX = icon(<path d="M17 7L7 17M7 7l10 10" />, 'X');
